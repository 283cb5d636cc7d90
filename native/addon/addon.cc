// skiff_native: the few Linux syscalls Node lacks, for the TypeScript services (see docs/ARCHITECTURE.md).
// No logic lives here: each function is one syscall with its errno turned into a JS error.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>

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

// mknod(path, mode, major, minor): mode includes the file type (S_IFCHR, S_IFBLK, S_IFIFO).
Napi::Value Mknod(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "mknod(path, mode, major?, minor?)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  mode_t mode = static_cast<mode_t>(info[1].As<Napi::Number>().Uint32Value());
  unsigned int major = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
  unsigned int minor = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 0;
  if (::mknod(path.c_str(), mode, makedev(major, minor)) != 0) {
    ErrnoError(env, "mknod", path, errno).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// lsetxattr(path, name, value): never follows a symlink at path.
Napi::Value Setxattr(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !(info[2].IsString() || info[2].IsBuffer())) {
    Napi::TypeError::New(env, "setxattr(path, name, value: string | Buffer)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  std::string value;
  if (info[2].IsBuffer()) {
    Napi::Buffer<char> b = info[2].As<Napi::Buffer<char>>();
    value.assign(b.Data(), b.Length());
  } else {
    value = info[2].As<Napi::String>().Utf8Value();
  }
  if (::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
    ErrnoError(env, "lsetxattr", path, errno).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, Mount));
  exports.Set("umount", Napi::Function::New(env, Umount));
  exports.Set("mknod", Napi::Function::New(env, Mknod));
  exports.Set("setxattr", Napi::Function::New(env, Setxattr));
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
