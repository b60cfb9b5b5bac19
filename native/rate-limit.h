// A token bucket: up to `burst` tokens, refilled at `perSecond`; Take() spends one.
// Single-threaded (each loop owns its own); time comes from the caller.
#pragma once
#include <algorithm>
#include <cstdint>

namespace weft {

class TokenBucket {
 public:
  TokenBucket(uint64_t perSecond, uint64_t burst) : perSecond_(perSecond), max_(burst * kOne), tokens_(max_) {}

  bool Take(uint64_t nowNs) {
    if (started_) {
      // Capped, so a long idle time cannot overflow: a full refill never takes longer.
      uint64_t elapsed = std::min<uint64_t>(nowNs - last_, (max_ / std::max<uint64_t>(perSecond_, 1)) + kOne);
      tokens_ = std::min(max_, tokens_ + elapsed * perSecond_);
    }
    started_ = true;
    last_ = nowNs;
    if (tokens_ < kOne) return false;
    tokens_ -= kOne;
    return true;
  }

 private:
  static constexpr uint64_t kOne = 1000000000;  // a token, in token-nanoseconds per second
  uint64_t perSecond_, max_, tokens_;
  uint64_t last_ = 0;
  bool started_ = false;
};

}  // namespace weft
