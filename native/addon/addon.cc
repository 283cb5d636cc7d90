// skiff_native: the few Linux syscalls Node lacks, for the TypeScript services (see docs/ARCHITECTURE.md).
// No logic lives here: each function is one syscall with its errno turned into a JS error.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <sys/mount.h>

namespace {

Napi::Error ErrnoError(Napi::Env env, const char *what, const std::string &path, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(what) + " " + path + ": " + std::strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, what));
  return e;
}

// mount(source, target, fstype, flags, data)
Napi::Value Mount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsString() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "mount(source, target, fstype, flags, data?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string source = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  std::string target = info[1].As<Napi::String>().Utf8Value();
  std::string fstype = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  unsigned long flags = static_cast<unsigned long>(info[3].As<Napi::Number>().Int64Value());
  std::string data = info.Length() > 4 && info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "";
  if (::mount(source.empty() ? nullptr : source.c_str(), target.c_str(), fstype.empty() ? nullptr : fstype.c_str(),
              flags, data.empty() ? nullptr : data.c_str()) != 0) {
    ErrnoError(env, "mount", target, errno).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// umount2(target, flags)
Napi::Value Umount(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "umount(target, flags?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string target = info[0].As<Napi::String>().Utf8Value();
  int flags = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  if (::umount2(target.c_str(), flags) != 0) ErrnoError(env, "umount2", target, errno).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, Mount));
  exports.Set("umount", Napi::Function::New(env, Umount));
  Napi::Object flags = Napi::Object::New(env);
  flags.Set("MS_RDONLY", static_cast<double>(MS_RDONLY));
  flags.Set("MS_BIND", static_cast<double>(MS_BIND));
  flags.Set("MS_REC", static_cast<double>(MS_REC));
  flags.Set("MS_PRIVATE", static_cast<double>(MS_PRIVATE));
  flags.Set("MS_REMOUNT", static_cast<double>(MS_REMOUNT));
  flags.Set("MNT_DETACH", static_cast<double>(MNT_DETACH));
  exports.Set("flags", flags);
  return exports;
}

}  // namespace

NODE_API_MODULE(skiff_native, Init)
