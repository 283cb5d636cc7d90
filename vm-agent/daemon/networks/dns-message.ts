// The DNS wire format (RFC 1035 §4, RFC 6891 for the OPT record), as much as the embedded DNS server needs: read
// a whole message with bounds checks everywhere (a malformed or hostile packet is a DnsFormatError, never a crash
// or a loop), and write answers. Names are kept as their raw labels so a question is echoed byte for byte (case
// included: resolvers that randomise the case of their queries check it).

export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const RRType = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, TXT: 16, AAAA: 28, OPT: 41, ANY: 255 } as const;
export const CLASS_IN = 1;
export const CLASS_ANY = 255;
export const HEADER_SIZE = 12;

/** The message is not well-formed DNS: answered with FORMERR. */
export class DnsFormatError extends Error {
  override name = 'DnsFormatError';
}

export interface Header {
  id: number;
  /** Set in responses. */
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  rcode: number;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

export interface Question {
  /** The raw labels, as they came (case preserved). */
  labels: Buffer[];
  type: number;
  class: number;
}

export interface ResourceRecord {
  labels: Buffer[];
  type: number;
  class: number;
  ttl: number;
  data: Buffer;
}

export interface Message {
  header: Header;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
  /** From an OPT record in the additional section (EDNS0), when there is one. */
  edns?: { udpSize: number; version: number };
}

export function parseHeader(buf: Buffer): Header {
  if (buf.length < HEADER_SIZE) throw new DnsFormatError(`message of ${buf.length} bytes is shorter than a header`);
  const flags = buf.readUInt16BE(2);
  return {
    id: buf.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
    qdcount: buf.readUInt16BE(4),
    ancount: buf.readUInt16BE(6),
    nscount: buf.readUInt16BE(8),
    arcount: buf.readUInt16BE(10),
  };
}

/**
 * Reads the name at `start`, following compression pointers. Each pointer must go strictly before every byte of
 * the name read so far, so pointer chains always move backwards and end: no loop is possible, and the work is
 * bounded by the message size. `end` is where the name ends in the message (after its first pointer, if any).
 */
export function readName(buf: Buffer, start: number): { labels: Buffer[]; end: number } {
  const labels: Buffer[] = [];
  let pos = start;
  let floor = start;
  let end = -1;
  let wireLength = 1; // the root label's zero byte
  for (;;) {
    if (pos >= buf.length) throw new DnsFormatError('name runs past the end of the message');
    const len = buf[pos]!;
    if (len === 0) return { labels, end: end < 0 ? pos + 1 : end };
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) throw new DnsFormatError('compression pointer runs past the end of the message');
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (target >= floor) throw new DnsFormatError('compression pointer does not point backwards');
      if (end < 0) end = pos + 2;
      pos = floor = target;
      continue;
    }
    // 0x40 and 0x80 are the obsolete extended label types: a length byte over 63 is not a label.
    if (kind !== 0) throw new DnsFormatError(`label length byte 0x${len.toString(16)} is over 63`);
    if (pos + 1 + len > buf.length) throw new DnsFormatError('label runs past the end of the message');
    wireLength += 1 + len;
    if (wireLength > 255) throw new DnsFormatError('name longer than 255 bytes');
    labels.push(buf.subarray(pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
}

/** The name as text, without the trailing dot ("" for the root). Bytes are taken as Latin-1. */
export function nameText(labels: Buffer[]): string {
  return labels.map((l) => l.toString('latin1')).join('.');
}

/** DNS compares names case-insensitively in ASCII only (RFC 4343). */
export function lowerAscii(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

function readQuestion(buf: Buffer, pos: number): { question: Question; end: number } {
  const { labels, end } = readName(buf, pos);
  if (end + 4 > buf.length) throw new DnsFormatError('question runs past the end of the message');
  return { question: { labels, type: buf.readUInt16BE(end), class: buf.readUInt16BE(end + 2) }, end: end + 4 };
}

function readRecord(buf: Buffer, pos: number): { record: ResourceRecord; end: number } {
  const { labels, end } = readName(buf, pos);
  if (end + 10 > buf.length) throw new DnsFormatError('resource record runs past the end of the message');
  const rdlength = buf.readUInt16BE(end + 8);
  const dataStart = end + 10;
  if (dataStart + rdlength > buf.length) throw new DnsFormatError('record data runs past the end of the message');
  return {
    record: {
      labels,
      type: buf.readUInt16BE(end),
      class: buf.readUInt16BE(end + 2),
      ttl: buf.readUInt32BE(end + 4),
      data: buf.subarray(dataStart, dataStart + rdlength),
    },
    end: dataStart + rdlength,
  };
}

/** Header and questions only: enough to match an upstream's answer to the question asked. */
export function parseQuestions(buf: Buffer): { header: Header; questions: Question[]; end: number } {
  const header = parseHeader(buf);
  const questions: Question[] = [];
  let pos = HEADER_SIZE;
  for (let i = 0; i < header.qdcount; i++) {
    const q = readQuestion(buf, pos);
    questions.push(q.question);
    pos = q.end;
  }
  return { header, questions, end: pos };
}

/** The whole message. Counts larger than the records present are a DnsFormatError; trailing bytes are ignored. */
export function parseMessage(buf: Buffer): Message {
  const { header, questions, end } = parseQuestions(buf);
  let pos = end;
  const section = (count: number): ResourceRecord[] => {
    const records: ResourceRecord[] = [];
    for (let i = 0; i < count; i++) {
      const r = readRecord(buf, pos);
      records.push(r.record);
      pos = r.end;
    }
    return records;
  };
  const answers = section(header.ancount);
  const authorities = section(header.nscount);
  const additionals = section(header.arcount);
  const msg: Message = { header, questions, answers, authorities, additionals };
  const opts = additionals.filter((r) => r.type === RRType.OPT);
  if (opts.length > 1) throw new DnsFormatError('more than one OPT record');
  const opt = opts[0];
  if (opt) {
    if (opt.labels.length !== 0) throw new DnsFormatError('OPT record with a name other than the root');
    msg.edns = { udpSize: opt.class, version: (opt.ttl >>> 16) & 0xff };
  }
  return msg;
}

// ---------------------------------------------------------------------------------------------- writing

export interface Answer {
  /** Records of the question's name (written as a pointer to it): the only kind the server makes. */
  type: number;
  ttl: number;
  data: Buffer;
}

export interface Response {
  id: number;
  opcode?: number;
  aa?: boolean;
  tc?: boolean;
  rd?: boolean;
  ra?: boolean;
  rcode: number;
  question?: Question;
  answers?: Answer[];
  /** Add an OPT record advertising this UDP payload size (when the query had EDNS). */
  ednsUdpSize?: number;
}

function encodeLabels(labels: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const l of labels) {
    if (l.length === 0 || l.length > 63) throw new Error(`DNS label of ${l.length} bytes`);
    parts.push(Buffer.from([l.length]), l);
  }
  parts.push(Buffer.from([0]));
  const out = Buffer.concat(parts);
  if (out.length > 255) throw new Error('DNS name longer than 255 bytes');
  return out;
}

/** A response: the header, the question echoed, answers for the question's name and an optional OPT record. */
export function encodeResponse(r: Response): Buffer {
  const answers = r.answers ?? [];
  if (answers.length > 0 && !r.question) throw new Error('DNS answers need the question they answer');
  const flags =
    0x8000 |
    (((r.opcode ?? 0) & 0xf) << 11) |
    (r.aa ? 0x0400 : 0) |
    (r.tc ? 0x0200 : 0) |
    (r.rd ? 0x0100 : 0) |
    (r.ra ? 0x0080 : 0) |
    (r.rcode & 0xf);
  const header = Buffer.alloc(HEADER_SIZE);
  header.writeUInt16BE(r.id & 0xffff, 0);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(r.question ? 1 : 0, 4);
  header.writeUInt16BE(answers.length, 6);
  header.writeUInt16BE(0, 8);
  header.writeUInt16BE(r.ednsUdpSize !== undefined ? 1 : 0, 10);
  const parts: Buffer[] = [header];
  if (r.question) {
    const tail = Buffer.alloc(4);
    tail.writeUInt16BE(r.question.type, 0);
    tail.writeUInt16BE(r.question.class, 2);
    parts.push(encodeLabels(r.question.labels), tail);
  }
  for (const a of answers) {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc000 | HEADER_SIZE, 0); // the question's name, right after the header
    rr.writeUInt16BE(a.type, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(a.ttl >>> 0, 6);
    rr.writeUInt16BE(a.data.length, 10);
    parts.push(rr, a.data);
  }
  if (r.ednsUdpSize !== undefined) {
    const opt = Buffer.alloc(11); // root name, type OPT, class = payload size, ttl 0 (rcode ext, version 0), no data
    opt.writeUInt16BE(RRType.OPT, 1);
    opt.writeUInt16BE(r.ednsUdpSize, 3);
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

/** The 4 bytes of an A record for a dotted IPv4 address. */
export function ipv4Bytes(address: string): Buffer {
  const parts = address.split('.');
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (bytes.length !== 4 || bytes.some((b) => !(b >= 0 && b <= 255)))
    throw new Error(`not an IPv4 address: ${address}`);
  return Buffer.from(bytes);
}
