// The TCP store's wire format. Every message is a frame: a 4-byte little-endian body length,
// then the body. Integers are little-endian fixed width; strings and byte arrays are a
// 4-byte length and the bytes. Nodes of a job may differ in endianness or word size.
//
// Request body:  u8 op, then
//   hello: u32 magic, u32 version          set:   str key, bytes value
//   get:   str key, i64 timeout_ms         add:   str key, i64 delta
//   check: u32 n, n x str key              wait:  u32 n, n x str key, i64 timeout_ms
// Reply body:    u8 status, then
//   ok:      get -> bytes value; add -> i64 new value; check -> u8 all present; others: nothing
//   timeout: u32 n, n x str missing key (the server waited timeout_ms for them)
//   error:   str message
// A client has at most one request outstanding; get and wait are answered when the keys
// exist or the timeout passes, so a blocked client costs the server no thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/store.hpp"

namespace trainer::launch::protocol {

enum class Op : std::uint8_t { hello = 1, set = 2, get = 3, add = 4, check = 5, wait = 6 };
enum class Status : std::uint8_t { ok = 0, timeout = 1, error = 2 };

inline constexpr std::uint32_t kMagic = 0x54535452;  // "RTST" little-endian: trainer store
inline constexpr std::uint32_t kVersion = 1;
// Refuse larger frames: a garbled or foreign peer must not make us allocate gigabytes.
inline constexpr std::uint32_t kMaxFrame = 256u << 20;

// A StoreError, so that a garbled reply reaches Store callers as the documented error type.
class ProtocolError : public trainer::StoreError {
 public:
  using trainer::StoreError::StoreError;
};

// Builds one frame; the length prefix is filled in by frame().
class Encoder {
 public:
  Encoder() : buf_(4, 0) {}
  Encoder& u8(std::uint8_t v);
  Encoder& u32(std::uint32_t v);
  Encoder& i64(std::int64_t v);
  Encoder& str(const std::string& s);
  Encoder& bytes(const std::vector<std::uint8_t>& b);
  const std::vector<std::uint8_t>& frame();

 private:
  std::vector<std::uint8_t> buf_;
};

// Reads one body; every accessor throws ProtocolError if the body is too short.
class Decoder {
 public:
  Decoder(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
  std::uint8_t u8();
  std::uint32_t u32();
  std::int64_t i64();
  std::string str();
  std::vector<std::uint8_t> bytes();
  bool done() const { return p_ == end_; }

 private:
  const std::uint8_t* take(std::size_t n);
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// Reads the little-endian length prefix at `p` (4 bytes).
std::uint32_t frame_length(const std::uint8_t* p);

}  // namespace trainer::launch::protocol
