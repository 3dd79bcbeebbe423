// CheckpointWriter: saves one step at a time. The training thread fills the host snapshot
// (begin_snapshot) and submits it; a background thread writes and fsyncs this rank's shard
// and reports it through the store. Rank 0 then gathers every rank's report, writes and
// fsyncs manifest.json, renames <dir>/step-N.tmp-<nonce> to <dir>/step-N, fsyncs <dir>,
// rewrites <dir>/latest (atomically) and deletes the oldest beyond `keep`.
// A save waits for the previous one; the destructor waits for the last.
#pragma once
#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "checkpoint/manifest.hpp"
#include "checkpoint/shard_writer.hpp"
#include "trainer/store.hpp"

namespace trainer::checkpoint {

struct WriterOptions {
  std::filesystem::path dir;
  int keep = 3;        // committed checkpoints kept; 0 keeps all
  bool async = true;   // false: submit() returns after the write (and, on rank 0, the commit)
  int rank = 0, world = 1;
  Store* store = nullptr;   // required when world > 1
  std::string store_prefix; // unique per job and trainer, e.g. "checkpoint/1"
  std::string nonce;        // names this job's temporaries; the same on every rank
  std::chrono::milliseconds peer_timeout{std::chrono::minutes(30)};
  Manifest header;          // seed, world, layout, recipe; step and contents are filled per save
  // Fault injection (faults: kind kill_during_save): SIGKILL this process once the shard of
  // this step's save is half written, leaving a partial temporary and no commit.
  std::optional<std::int64_t> kill_during_save;
};

struct WriteReport {
  std::int64_t step = 0;
  double write_s = 0;        // background: shard written and fsynced (+ commit on rank 0)
  std::uint64_t bytes = 0;   // this rank's shard
};

class CheckpointWriter {
 public:
  explicit CheckpointWriter(WriterOptions options);
  ~CheckpointWriter();  // waits for the write in flight; a failure is printed, not thrown
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Waits for the previous save (rethrowing its failure), then returns the buffer to fill.
  Snapshot& begin_snapshot();
  void submit(std::int64_t step);
  void wait();                                // the save in flight, if any
  std::optional<WriteReport> take_finished(); // a save that finished since the last call
  bool in_flight() const { return worker_.joinable(); }
  const WriterOptions& options() const { return options_; }

  std::filesystem::path temporary_dir(std::int64_t step) const;

 private:
  void write(std::int64_t step);  // shard + report (+ commit on rank 0)
  void commit(std::int64_t step, const ShardResult& mine);
  void retain();

  WriterOptions options_;
  Snapshot snapshot_;
  std::thread worker_;
  std::atomic<bool> done_{false};
  std::exception_ptr error_;
  WriteReport report_;
  std::optional<WriteReport> finished_;
};

// Committed checkpoints under `dir`, oldest first.
std::vector<std::pair<std::int64_t, std::filesystem::path>> committed_checkpoints(const std::filesystem::path& dir);

}  // namespace trainer::checkpoint
