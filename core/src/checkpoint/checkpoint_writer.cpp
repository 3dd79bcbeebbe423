#include "checkpoint/checkpoint_writer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <map>

#include "data/atomic_file.hpp"

namespace trainer::checkpoint {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

std::vector<std::pair<std::int64_t, std::filesystem::path>> committed_checkpoints(const std::filesystem::path& dir) {
  std::vector<std::pair<std::int64_t, std::filesystem::path>> found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (!e.is_directory()) continue;
    if (auto step = parse_step_dir(e.path().filename().string())) found.emplace_back(*step, e.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

CheckpointWriter::CheckpointWriter(WriterOptions options) : options_(std::move(options)) {
  if (options_.world > 1 && !options_.store) throw std::logic_error("CheckpointWriter: world > 1 needs the store");
}

CheckpointWriter::~CheckpointWriter() {
  try {
    wait();
  } catch (const std::exception& e) {
    fmt::print(stderr, "warning: checkpoint: {}\n", e.what());
  }
}

std::filesystem::path CheckpointWriter::temporary_dir(std::int64_t step) const {
  std::string name = step_dir_name(step);
  name += ".tmp-";
  name += options_.nonce;
  return options_.dir / name;
}

Snapshot& CheckpointWriter::begin_snapshot() {
  wait();
  return snapshot_;
}

void CheckpointWriter::submit(std::int64_t step) {
  wait();
  done_ = false;
  if (!options_.async) {
    write(step);
    done_ = true;
    finished_ = report_;
    return;
  }
  worker_ = std::thread([this, step] {
    try {
      write(step);
    } catch (...) {
      error_ = std::current_exception();
    }
    done_ = true;
  });
}

void CheckpointWriter::wait() {
  if (worker_.joinable()) {
    worker_.join();
    if (!error_) finished_ = report_;
  }
  if (error_) {
    auto e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

std::optional<WriteReport> CheckpointWriter::take_finished() {
  if (worker_.joinable() && done_) wait();
  auto r = finished_;
  finished_.reset();
  return r;
}

void CheckpointWriter::write(std::int64_t step) {
  const auto t0 = Clock::now();
  const auto tmp = temporary_dir(step);
  ensure_directory(tmp);
  ShardProgress progress;
  if (options_.kill_during_save == step) {
    progress = [this, step](std::uint64_t written, std::uint64_t total, const std::filesystem::path& file) {
      if (2 * written < total) return;
      fmt::print(stderr, "fault: rank {} is killed while writing its shard of the checkpoint of step {} ({} of {} bytes "
                 "of {} written)\n", options_.rank, step, written, total, file.string());
      std::fflush(stderr);
      std::raise(SIGKILL);
    };
  }
  const ShardResult mine = write_shard(tmp, options_.rank, snapshot_, progress);
  if (options_.rank == 0) {
    commit(step, mine);
  } else {
    options_.store->set(fmt::format("{}/{}/{}", options_.store_prefix, step, options_.rank), bytes_of(encode(mine)));
  }
  report_ = WriteReport{step, std::chrono::duration<double>(Clock::now() - t0).count(), mine.file.bytes};
}

void CheckpointWriter::commit(std::int64_t step, const ShardResult& mine) {
  std::vector<ShardResult> all{mine};
  if (options_.world > 1) {
    // Poll rather than block in get(): a blocked get would hold the shared client's lock.
    std::vector<std::string> keys;
    for (int r = 1; r < options_.world; ++r) keys.push_back(fmt::format("{}/{}/{}", options_.store_prefix, step, r));
    const auto deadline = Clock::now() + options_.peer_timeout;
    while (!options_.store->check(keys)) {
      if (Clock::now() > deadline) {
        throw std::runtime_error(fmt::format("checkpoint step {}: not every rank reported its shard within {} s", step,
                                             options_.peer_timeout.count() / 1000));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    for (const auto& k : keys) {
      const auto v = options_.store->get(k, std::chrono::seconds(60));
      all.push_back(decode_shard_result(std::string(v.begin(), v.end())));
    }
  }
  Manifest m = options_.header;
  m.step = step;
  std::map<std::string, std::size_t> index;
  for (const auto& r : all) {
    m.shards.push_back(r.file);
    for (const auto& c : r.chunks) {
      auto [it, fresh] = index.emplace(c.slice.tensor, m.tensors.size());
      if (fresh) m.tensors.push_back(TensorEntry{c.slice.tensor, DType::f32, c.slice.shape, {}});
      m.tensors[it->second].chunks.push_back(c.chunk);
    }
  }
  for (auto& t : m.tensors) {
    std::sort(t.chunks.begin(), t.chunks.end(), [](const Chunk& a, const Chunk& b) { return a.begin < b.begin; });
  }
  const auto tmp = temporary_dir(step);
  const std::string text = to_json(m);
  parse_manifest(text, "manifest of step " + std::to_string(step));  // every tensor covered exactly once
  data::write_text_atomically(tmp / "manifest.json", text);          // fsyncs the file and tmp
  const auto final_dir = options_.dir / step_dir_name(step);
  // A checkpoint of this step from before a fallback (it was damaged or superseded).
  if (std::filesystem::exists(final_dir)) std::filesystem::remove_all(final_dir);
  std::filesystem::rename(tmp, final_dir);
  fsync_directory(options_.dir);
  data::write_text_atomically(options_.dir / "latest", step_dir_name(step) + "\n");
  retain();
}

void CheckpointWriter::retain() {
  if (options_.keep <= 0) return;
  auto found = committed_checkpoints(options_.dir);
  const auto keep = static_cast<std::size_t>(options_.keep);
  for (std::size_t i = 0; i + keep < found.size(); ++i) {
    std::error_code ec;
    std::filesystem::remove_all(found[i].second, ec);
  }
}

}  // namespace trainer::checkpoint
