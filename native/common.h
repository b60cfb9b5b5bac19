// Shared helpers for the weft native addon. The addon only makes system calls
// and hands back numbers and buffers; all policy lives in TypeScript.
#pragma once
#include <napi.h>
#include <string>

namespace weft {

// Throws a JS Error whose message names the call and errno, and carries
// `code` (e.g. "EPERM") and `errno` (positive number) properties.
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& what, int err);

// Runs fn() on a fresh thread that first joins the network namespace at
// netnsPath (if non-empty), so sockets and devices it creates belong to that
// namespace while the calling (JS) thread never changes namespace.
// Returns fn's result; on setns failure returns -1 with *err set.
int InNetns(const std::string& netnsPath, int (*fn)(void*), void* arg, int* err);

void InitNetlink(Napi::Env env, Napi::Object exports);
void InitTun(Napi::Env env, Napi::Object exports);
void InitNotify(Napi::Env env, Napi::Object exports);
void InitForwarder(Napi::Env env, Napi::Object exports);
void InitHolder(Napi::Env env, Napi::Object exports);
void InitTesting(Napi::Env env, Napi::Object exports);  // tests only: offload, ipv4, loops

}  // namespace weft
