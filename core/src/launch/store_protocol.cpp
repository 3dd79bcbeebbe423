#include "launch/store_protocol.hpp"

namespace trainer::launch::protocol {

Encoder& Encoder::u8(std::uint8_t v) {
  buf_.push_back(v);
  return *this;
}

Encoder& Encoder::u32(std::uint32_t v) {
  for (int i = 0; i < 4; ++i) buf_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  return *this;
}

Encoder& Encoder::i64(std::int64_t v) {
  auto u = static_cast<std::uint64_t>(v);
  for (int i = 0; i < 8; ++i) buf_.push_back(static_cast<std::uint8_t>(u >> (8 * i)));
  return *this;
}

Encoder& Encoder::str(const std::string& s) {
  u32(static_cast<std::uint32_t>(s.size()));
  buf_.insert(buf_.end(), s.begin(), s.end());
  return *this;
}

Encoder& Encoder::bytes(const std::vector<std::uint8_t>& b) {
  u32(static_cast<std::uint32_t>(b.size()));
  buf_.insert(buf_.end(), b.begin(), b.end());
  return *this;
}

const std::vector<std::uint8_t>& Encoder::frame() {
  std::size_t body = buf_.size() - 4;
  if (body > kMaxFrame) throw ProtocolError("store message of " + std::to_string(body) + " bytes exceeds the limit");
  for (int i = 0; i < 4; ++i) buf_[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(body >> (8 * i));
  return buf_;
}

const std::uint8_t* Decoder::take(std::size_t n) {
  if (static_cast<std::size_t>(end_ - p_) < n) throw ProtocolError("truncated store message");
  const std::uint8_t* at = p_;
  p_ += n;
  return at;
}

std::uint8_t Decoder::u8() { return *take(1); }

std::uint32_t Decoder::u32() { return frame_length(take(4)); }

std::int64_t Decoder::i64() {
  const std::uint8_t* p = take(8);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return static_cast<std::int64_t>(v);
}

std::string Decoder::str() {
  std::uint32_t n = u32();
  const std::uint8_t* p = take(n);
  return std::string(reinterpret_cast<const char*>(p), n);
}

std::vector<std::uint8_t> Decoder::bytes() {
  std::uint32_t n = u32();
  const std::uint8_t* p = take(n);
  return std::vector<std::uint8_t>(p, p + n);
}

std::uint32_t frame_length(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

}  // namespace trainer::launch::protocol
