// The manifest of one checkpoint: every global tensor (parameter values, optimizer state) by
// name, shape and dtype, whole (as in the unsplit model, whatever the tp and pp degrees of
// the job that saved it), and which byte range of which shard file holds which elements of
// it, with a checksum per chunk. Plus the step, the mesh and layout it was saved under, the
// resolved recipe and where the job stood (sampler, RNG, schedule: all pure functions of
// seed and step). Written as JSON.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainer/tensor.hpp"

namespace trainer::checkpoint {

// Format 2 adds strided chunks (tensor-parallel shards) and the mesh; format 1 checkpoints
// (contiguous chunks, dp only) still load.
inline constexpr const char* kFormat = "trainer-checkpoint/2";
inline constexpr const char* kFormatV1 = "trainer-checkpoint/1";

// Tensor names: "params/<parameter>" and "optimizer/<kind>/<parameter>" (kind: adam_m, ...).
std::string param_tensor(const std::string& param);
std::string state_tensor(const std::string& kind, const std::string& param);

// `count` runs of the flattened tensor, [begin + k*stride, end + k*stride) for k < count,
// stored one after another from `offset` (count 1: the element range [begin, end)).
struct Chunk {
  std::string file;          // shard file, relative to the checkpoint directory
  std::uint64_t offset = 0;  // byte offset in the file
  std::int64_t begin = 0;    // the first run's elements [begin, end) of the flattened tensor
  std::int64_t end = 0;
  std::uint64_t xxh64 = 0;   // of the chunk's numel() * 4 bytes
  std::int64_t stride = 0;   // between runs (count > 1)
  std::int64_t count = 1;
  std::int64_t numel() const { return (end - begin) * count; }
};

struct TensorEntry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  std::vector<Chunk> chunks;  // sorted by begin; their runs together cover [0, numel) once
};

struct ShardFile {
  std::string file;
  std::uint64_t bytes = 0;
};

struct Manifest {
  std::string format = kFormat;
  std::int64_t step = 0;  // optimizer steps taken: training resumes at this 0-based step
  std::uint64_t seed = 0;
  int world = 1;  // processes: dp × tp × pp
  int dp = 1, tp = 1, pp = 1;
  std::string layout;
  std::string recipe;  // the resolved recipe, as `trainer validate` prints it
  std::vector<ShardFile> shards;
  std::vector<TensorEntry> tensors;

  const TensorEntry* find(const std::string& name) const;
};

class ManifestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string to_json(const Manifest& m);
// Throws ManifestError (naming `what`) on bad JSON, a missing field or chunks that do not
// cover their tensor exactly.
Manifest parse_manifest(const std::string& text, const std::string& what);
Manifest read_manifest(const std::filesystem::path& file);

// "step-000120" and back; nullopt for anything else (temporaries included).
std::string step_dir_name(std::int64_t step);
std::optional<std::int64_t> parse_step_dir(const std::string& name);

}  // namespace trainer::checkpoint
