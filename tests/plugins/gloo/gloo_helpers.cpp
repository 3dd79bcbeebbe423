#include "gloo_helpers.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <exception>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

#include <catch2/catch.hpp>

namespace gloo_test {

namespace fs = std::filesystem;

// ---- FileStore ----

FileStore::FileStore(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }

// Keys hold '/' and other characters a file name cannot: hex-escape everything but [A-Za-z0-9._-].
fs::path FileStore::path(const std::string& key) const {
  static const char* hex = "0123456789abcdef";
  std::string name = "k_";
  for (unsigned char c : key) {
    if (std::isalnum(c) || c == '.' || c == '-' || c == '_') {
      name += static_cast<char>(c);
    } else {
      name += '%';
      name += hex[c >> 4];
      name += hex[c & 15];
    }
  }
  return dir_ / name;
}

void FileStore::write(const std::string& key, const std::vector<std::uint8_t>& value) {
  static std::atomic<int> counter{0};
  const auto target = path(key);
  auto tmp = target;
  // Append piece by piece: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string.
  tmp += ".tmp.";
  tmp += std::to_string(::getpid());
  tmp += ".";
  tmp += std::to_string(counter++);
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(reinterpret_cast<const char*>(value.data()), static_cast<std::streamsize>(value.size()));
    if (!out) throw trainer::StoreError(std::string("file store: cannot write ").append(tmp.string()));
  }
  fs::rename(tmp, target);
}

void FileStore::set(const std::string& key, const std::vector<std::uint8_t>& value) { write(key, value); }

std::vector<std::uint8_t> FileStore::get(const std::string& key, std::chrono::milliseconds timeout) {
  wait({key}, timeout);
  std::ifstream in(path(key), std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::int64_t FileStore::add(const std::string& key, std::int64_t delta) {
  const auto lock_path = dir_ / "lock";
  const int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0644);
  if (fd < 0) throw trainer::StoreError(std::string("file store: cannot open ").append(lock_path.string()));
  ::flock(fd, LOCK_EX);
  std::int64_t value = delta;
  try {
    if (fs::exists(path(key))) {
      std::ifstream in(path(key));
      std::int64_t old = 0;
      in >> old;
      value += old;
    }
    const auto text = std::to_string(value);
    write(key, std::vector<std::uint8_t>(text.begin(), text.end()));
  } catch (...) {
    ::flock(fd, LOCK_UN);
    ::close(fd);
    throw;
  }
  ::flock(fd, LOCK_UN);
  ::close(fd);
  return value;
}

void FileStore::wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!check(keys)) {
    if (std::chrono::steady_clock::now() > deadline) {
      throw trainer::StoreError("file store: timed out waiting for " + keys.front());
    }
    std::this_thread::sleep_for(2ms);
  }
}

bool FileStore::check(const std::vector<std::string>& keys) {
  for (const auto& k : keys) {
    if (!fs::exists(path(k))) return false;
  }
  return true;
}

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "gloo-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

// ---- plugin and ranks ----

bool plugin_available() {
  const fs::path so = fs::path(TRAINER_TEST_PLUGIN_DIR) / "trainer_plugin_gloo.so";
  if (fs::exists(so)) return true;
#if __has_include(<gloo/rendezvous/context.h>)
  FAIL("gloo is installed but " << so << " was not built (build target trainer_plugin_gloo)");
#else
  WARN("gloo is not installed: the gloo plugin is skipped and so are its tests");
#endif
  return false;
}

Backend make_backend(const std::map<std::string, std::string>& overrides) {
  return trainer::test::make_plugin<trainer::CommBackend>(trainer::PluginKind::comm, "gloo", overrides);
}

trainer::GroupSpec group(const std::string& name, std::vector<int> ranks, int global_rank,
                         std::chrono::milliseconds timeout) {
  trainer::GroupSpec spec;
  spec.name = name;
  spec.ranks = std::move(ranks);
  spec.global_rank = global_rank;
  spec.timeout = timeout;
  return spec;
}

trainer::Tensor host_tensor(trainer::DType dtype, std::int64_t numel) {
  const std::size_t bytes = static_cast<std::size_t>(numel) * trainer::dtype_size(dtype);
  std::shared_ptr<void> storage(new std::uint8_t[std::max<std::size_t>(bytes, 1)](),
                                std::default_delete<std::uint8_t[]>());
  return trainer::Tensor(storage, storage.get(), {numel}, dtype, trainer::Device::cpu);
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-12, 12);
  std::vector<float> v(n);
  for (auto& x : v) x = std::ldexp(mantissa(rng), exponent(rng));
  return v;
}

}  // namespace gloo_test
