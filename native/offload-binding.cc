// exports.offload: the offload packet surgery (offload.h) for unit tests only.
// The engine calls the C++ functions directly on its own threads; nothing in
// the agent calls these per packet.
#include "common.h"
#include "offload.h"

#include <string>
#include <vector>

namespace weft {

namespace {

using offload::Status;

[[noreturn]] void ThrowStatus(Napi::Env env, const std::string& what, Status s) {
  Napi::Error e = Napi::Error::New(env, what + ": " + offload::StatusName(s));
  e.Set("code", Napi::String::New(env, offload::StatusName(s)));
  throw e;
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsBuffer()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a Buffer");
  }
  return info[i].As<Napi::Buffer<uint8_t>>();
}

Napi::Buffer<uint8_t> HdrBuffer(Napi::Env env, const offload::VirtioNetHdr& h) {
  auto b = Napi::Buffer<uint8_t>::New(env, offload::kVirtioNetHdrLen);
  offload::WriteVirtioNetHdr(h, b.Data());
  return b;
}

// segment(pkt, vnetHdr) -> Buffer[]
Napi::Value Segment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto pkt = ArgBuffer(info, 0, "pkt");
  auto hb = ArgBuffer(info, 1, "vnetHdr");
  offload::VirtioNetHdr h;
  if (!offload::ParseVirtioNetHdr(hb.Data(), hb.Length(), &h)) ThrowStatus(env, "segment: virtio_net_hdr", Status::kTruncated);
  std::vector<std::vector<uint8_t>> segs;
  Status s = offload::Segment(pkt.Data(), pkt.Length(), h, &segs);
  if (s != Status::kOk) ThrowStatus(env, "segment", s);
  Napi::Array out = Napi::Array::New(env, segs.size());
  for (size_t i = 0; i < segs.size(); i++) {
    out.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, segs[i].data(), segs[i].size()));
  }
  return out;
}

// coalesce(pkts) -> { hdr, pkt }[]
Napi::Value Coalesce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "pkts must be an array of Buffers");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<std::vector<uint8_t>> in;
  in.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsBuffer()) throw Napi::TypeError::New(env, "pkts[" + std::to_string(i) + "] must be a Buffer");
    auto b = v.As<Napi::Buffer<uint8_t>>();
    in.emplace_back(b.Data(), b.Data() + b.Length());
  }
  std::vector<offload::OutPacket> res = offload::Coalesce(in);
  Napi::Array out = Napi::Array::New(env, res.size());
  for (size_t i = 0; i < res.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("hdr", HdrBuffer(env, res[i].hdr));
    o.Set("pkt", Napi::Buffer<uint8_t>::Copy(env, res[i].bytes.data(), res[i].bytes.size()));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// checksum(buf) -> the 16-bit Internet checksum to store (~folded sum)
Napi::Value ChecksumOf(const Napi::CallbackInfo& info) {
  auto b = ArgBuffer(info, 0, "buf");
  return Napi::Number::New(info.Env(), weft::Checksum(b.Data(), b.Length()));
}

}  // namespace

void InitOffload(Napi::Env env, Napi::Object exports) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("segment", Napi::Function::New(env, Segment));
  o.Set("coalesce", Napi::Function::New(env, Coalesce));
  o.Set("checksum", Napi::Function::New(env, ChecksumOf));
  exports.Set("offload", o);
}

}  // namespace weft
