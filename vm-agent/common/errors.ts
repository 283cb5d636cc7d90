// Errors that carry their gRPC status code, so that services can throw them and the gRPC layer maps them. The
// message should say what was wrong and what to do about it.
import { status } from '@grpc/grpc-js';

export class ApiError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const notFound = (msg: string): ApiError => new ApiError(status.NOT_FOUND, msg);
export const alreadyExists = (msg: string): ApiError => new ApiError(status.ALREADY_EXISTS, msg);
export const failedPrecondition = (msg: string): ApiError => new ApiError(status.FAILED_PRECONDITION, msg);
export const invalidArgument = (msg: string): ApiError => new ApiError(status.INVALID_ARGUMENT, msg);
export const internal = (msg: string): ApiError => new ApiError(status.INTERNAL, msg);
export const unavailable = (msg: string): ApiError => new ApiError(status.UNAVAILABLE, msg);

/** The gRPC code of an error: its own when it is an ApiError, INTERNAL otherwise. */
export function codeOf(err: unknown): status {
  return err instanceof ApiError ? err.code : status.INTERNAL;
}
