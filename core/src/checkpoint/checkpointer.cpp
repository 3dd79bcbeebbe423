#include "checkpoint/checkpointer.hpp"

#include <fmt/format.h>

#include <chrono>
#include <random>

namespace trainer::checkpoint {
namespace {

using Clock = std::chrono::steady_clock;

struct TargetName {
  std::string param;
  std::int64_t begin = 0, end = -1;  // end -1: the whole parameter
};

TargetName parse_target(const std::string& name) {
  TargetName t{name};
  const auto open = name.rfind('[');
  if (name.empty() || name.back() != ']' || open == std::string::npos) return t;
  const auto colon = name.find(':', open);
  if (colon == std::string::npos) return t;
  t.param = name.substr(0, open);
  t.begin = std::stoll(name.substr(open + 1, colon - open - 1));
  t.end = std::stoll(name.substr(colon + 1, name.size() - colon - 2));
  return t;
}

std::string make_nonce() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                      static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()));
  return fmt::format("{:08x}", gen() & 0xffffffffu);
}

}  // namespace

CheckpointSettings CheckpointSettings::from_recipe(const ConfigNode& recipe) {
  const auto& c = recipe.at("checkpoint");
  CheckpointSettings s;
  const std::string dir = c.get_string("dir");
  s.dir = dir.empty() ? std::filesystem::path(recipe.at("output").get_string("dir")) / "checkpoints"
                      : std::filesystem::path(dir);
  s.every = c.get_int("every");
  s.keep = static_cast<int>(c.get_int("keep"));
  s.async = c.get_bool("async");
  s.resume = c.get_string("resume") == "auto";
  return s;
}

std::int64_t BoundSlice::numel() const {
  std::int64_t n = 0;
  for (const auto& r : refs) n += r.numel();
  return n;
}

bool RankInfo::writes(const BoundSlice& s) const {
  if (s.param < foreign) return false;
  if (tp_size > 1 && s.tp_whole && tp_rank != 0) return false;
  return !replicated || static_cast<int>(s.param % static_cast<std::size_t>(dp_size)) == dp_rank;
}

namespace {

// Where local elements [begin, end) of parameter p lie in tensor `tensor`, as slices.
std::vector<SliceRef> whole_slices(const ParameterSpec& spec, const std::string& tensor, std::int64_t begin,
                                   std::int64_t end) {
  std::vector<SliceRef> out;
  const Shape shape = whole_shape(spec);
  for (const auto& r : whole_regions(spec, begin, end)) out.push_back({tensor, shape, r.begin, r.end, r.stride, r.count});
  return out;
}

}  // namespace

std::vector<BoundSlice> bind_state(const ParameterStore& params, const std::vector<OptimizerTarget>& targets,
                                   const Optimizer& optimizer) {
  std::vector<BoundSlice> out;
  std::vector<TargetName> names;
  for (const auto& t : targets) {
    TargetName n = parse_target(t.name);
    const auto p = params.find(n.param);
    if (!p) throw CheckpointError("optimizer target '" + t.name + "' names no parameter");
    const auto& spec = params.spec(*p);
    if (n.end < 0) n.end = shape_numel(spec.shape);
    if (n.end - n.begin != t.value.numel()) {
      throw CheckpointError(fmt::format("optimizer target '{}' holds {} elements", t.name, t.value.numel()));
    }
    out.push_back({whole_slices(spec, param_tensor(n.param), n.begin, n.end), t.value, *p, spec.global.empty()});
    names.push_back(n);
  }
  for (const auto& [name, tensor] : optimizer.state()) {
    // "<target name>.<kind>": the longest target name that prefixes it.
    std::optional<std::size_t> best;
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& tn = targets[i].name;
      if (name.size() > tn.size() + 1 && name.compare(0, tn.size(), tn) == 0 && name[tn.size()] == '.' &&
          (!best || tn.size() > targets[*best].name.size())) {
        best = i;
      }
    }
    if (!best) throw CheckpointError("optimizer state '" + name + "' is not named <target>.<kind>");
    const auto& n = names[*best];
    if (tensor.numel() != n.end - n.begin || tensor.dtype() != DType::f32) {
      throw CheckpointError("optimizer state '" + name + "' is not one f32 per element of its target");
    }
    const std::string kind = name.substr(targets[*best].name.size() + 1);
    const auto p = *params.find(n.param);
    const auto& spec = params.spec(p);
    out.push_back({whole_slices(spec, state_tensor(kind, n.param), n.begin, n.end), tensor, p, spec.global.empty()});
  }
  return out;
}

Checkpointer::Checkpointer(const CheckpointSettings& settings, Backend& backend, std::vector<BoundSlice> slices,
                           const RankInfo& rank, Manifest header)
    : settings_(settings), backend_(backend), slices_(std::move(slices)), rank_(rank) {
  for (std::size_t i = 0; i < slices_.size(); ++i) {
    if (rank_.writes(slices_[i])) mine_.push_back(i);
  }
  // Rank 0 decides what to resume from and names this job's temporaries; the others learn
  // both through the store, so that every rank loads the same checkpoint.
  std::string nonce, chosen;
  std::string prefix = "checkpoint";
  if (rank_.world > 1) prefix += fmt::format("/{}", rank_.store->add(fmt::format("checkpoint/generation/{}", rank_.rank), 1));
  if (rank_.rank == 0) {
    nonce = make_nonce();
    if (std::filesystem::is_directory(settings_.dir)) {
      if (settings_.resume) resume_ = find_latest_good(settings_.dir, warnings_);
      remove_stale_temporaries(settings_.dir);
    }
    if (resume_) chosen = resume_->dir.string();
    if (rank_.world > 1) {
      const std::string v = nonce + "\n" + chosen;
      rank_.store->set(prefix + "/init", std::vector<std::uint8_t>(v.begin(), v.end()));
    }
  } else {
    const auto v = rank_.store->get(prefix + "/init", std::chrono::minutes(30));
    const std::string s(v.begin(), v.end());
    nonce = s.substr(0, s.find('\n'));
    chosen = s.substr(s.find('\n') + 1);
    if (!chosen.empty()) resume_ = FoundCheckpoint{chosen, read_manifest(std::filesystem::path(chosen) / "manifest.json")};
  }
  WriterOptions w;
  w.dir = settings_.dir;
  w.keep = settings_.keep;
  w.async = settings_.async;
  w.rank = rank_.rank;
  w.world = rank_.world;
  w.store = rank_.store;
  w.store_prefix = prefix;
  w.nonce = nonce;
  w.header = std::move(header);
  w.kill_during_save = settings_.kill_during_save;
  writer_ = std::make_unique<CheckpointWriter>(std::move(w));
  // The snapshot's host memory comes from the backend: pinned on a GPU, so the copy to host
  // (the part of a save the step waits for) runs at full bandwidth.
  writer_->begin_snapshot().data.set_backend(&backend_);
  if (settings_.every > 0) {
    // The host buffer lives from save to save; touching it now keeps its page faults out of
    // the first save's blocked time.
    std::size_t total = 0;
    for (auto i : mine_) total += static_cast<std::size_t>(slices_[i].numel());
    writer_->begin_snapshot().data.assign_zeros(total);
  }
}

void Checkpointer::load() {
  if (!resume_) return;
  const auto& m = resume_->manifest;
  ShardFiles files(resume_->dir);
  std::vector<float> host;
  for (const auto& s : slices_) {
    host.resize(static_cast<std::size_t>(s.numel()));
    std::size_t at = 0;
    for (const auto& ref : s.refs) {
      const TensorEntry* t = m.find(ref.tensor);
      if (!t) {
        throw CheckpointError(fmt::format("{} has no tensor '{}' (another model or optimizer?)", resume_->dir.string(),
                                          ref.tensor));
      }
      // A shard's whole shape may be a view of the one recorded ([3, C, C] of [3C, C]).
      if (!same_layout(t->shape, ref.shape)) {
        throw CheckpointError(fmt::format("{}: tensor '{}' has shape {} in the checkpoint but {} in the model",
                                          resume_->dir.string(), ref.tensor, shape_string(t->shape),
                                          shape_string(ref.shape)));
      }
      read_region(files, m, ref.tensor, Region{ref.begin, ref.end, ref.stride, ref.count}, host.data() + at);
      at += static_cast<std::size_t>(ref.numel());
    }
    backend_.copy_from_host(s.tensor, host.data());
  }
}

double Checkpointer::save(std::int64_t steps_done) {
  const auto t0 = Clock::now();
  Snapshot& snap = writer_->begin_snapshot();  // waits for the previous save
  std::size_t total = 0;
  snap.slices.clear();
  for (auto i : mine_) {
    for (const auto& ref : slices_[i].refs) snap.slices.push_back(ref);
    total += static_cast<std::size_t>(slices_[i].numel());
  }
  snap.data.resize(total);  // the buffer is kept from save to save
  std::size_t at = 0;
  for (auto i : mine_) {
    backend_.copy_to_host(snap.data.data() + at, slices_[i].tensor);
    at += static_cast<std::size_t>(slices_[i].numel());
  }
  backend_.synchronize();
  writer_->submit(steps_done);
  last_saved_ = steps_done;
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace trainer::checkpoint
