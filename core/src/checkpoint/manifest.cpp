#include "checkpoint/manifest.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "checkpoint/checksum.hpp"
#include "util/text.hpp"

namespace trainer::checkpoint {
namespace {

std::string quote(const std::string& s) { return json_quote(s); }

DType dtype_from(const std::string& s, const std::string& what) {
  if (s == "f32") return DType::f32;
  if (s == "bf16") return DType::bf16;
  if (s == "i32") return DType::i32;
  throw ManifestError(what + ": unknown dtype '" + s + "'");
}

YAML::Node field(const YAML::Node& n, const char* key, const std::string& what) {
  const YAML::Node v = n[key];
  if (!v) throw ManifestError(what + ": missing field '" + key + "'");
  return v;
}

}  // namespace

std::string param_tensor(const std::string& param) {
  std::string s = "params/";
  s += param;
  return s;
}

std::string state_tensor(const std::string& kind, const std::string& param) {
  std::string s = "optimizer/";
  s += kind;
  s += '/';
  s += param;
  return s;
}

const TensorEntry* Manifest::find(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string to_json(const Manifest& m) {
  std::string s = "{\n";
  s += fmt::format("  \"format\": {},\n  \"step\": {},\n  \"seed\": {},\n  \"world\": {},\n  \"layout\": {},\n",
                   quote(m.format), m.step, m.seed, m.world, quote(m.layout));
  s += fmt::format("  \"mesh\": {{\"dp\": {}, \"tp\": {}, \"pp\": {}}},\n", m.dp, m.tp, m.pp);
  // Where the data stream, dropout and schedule stand: each is a pure function of (seed, step).
  s += fmt::format("  \"sampler\": {{\"seed\": {}, \"step\": {}}},\n", m.seed, m.step);
  s += fmt::format("  \"rng\": {{\"kind\": \"counter\", \"seed\": {}, \"step\": {}}},\n", m.seed, m.step);
  s += fmt::format("  \"lr_schedule\": {{\"step\": {}}},\n", m.step);
  s += "  \"shards\": [";
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    s += fmt::format("{}\n    {{\"file\": {}, \"bytes\": {}}}", i ? "," : "", quote(m.shards[i].file),
                     m.shards[i].bytes);
  }
  s += "\n  ],\n  \"tensors\": [";
  for (std::size_t i = 0; i < m.tensors.size(); ++i) {
    const auto& t = m.tensors[i];
    std::string shape;
    for (std::size_t d = 0; d < t.shape.size(); ++d) shape += fmt::format("{}{}", d ? ", " : "", t.shape[d]);
    s += fmt::format("{}\n    {{\"name\": {}, \"dtype\": \"{}\", \"shape\": [{}], \"chunks\": [", i ? "," : "",
                     quote(t.name), dtype_name(t.dtype), shape);
    for (std::size_t c = 0; c < t.chunks.size(); ++c) {
      const auto& k = t.chunks[c];
      const std::string runs = k.count > 1 ? fmt::format(", \"stride\": {}, \"count\": {}", k.stride, k.count) : "";
      s += fmt::format("{}\n      {{\"file\": {}, \"offset\": {}, \"begin\": {}, \"end\": {}{}, \"xxh64\": \"{}\"}}",
                       c ? "," : "", quote(k.file), k.offset, k.begin, k.end, runs, hex64(k.xxh64));
    }
    s += "]}";
  }
  s += "\n  ],\n  \"recipe\": " + quote(m.recipe) + "\n}\n";
  return s;
}

Manifest parse_manifest(const std::string& text, const std::string& what) {
  YAML::Node root;
  try {
    root = YAML::Load(text);  // JSON is YAML
  } catch (const YAML::Exception& e) {
    throw ManifestError(what + ": not valid JSON: " + e.what());
  }
  if (!root.IsMap()) throw ManifestError(what + ": not a JSON object");
  Manifest m;
  try {
    m.format = field(root, "format", what).as<std::string>();
    if (m.format != kFormat && m.format != kFormatV1) {
      throw ManifestError(what + ": format '" + m.format + "', expected '" + kFormat + "'");
    }
    m.step = field(root, "step", what).as<std::int64_t>();
    m.seed = field(root, "seed", what).as<std::uint64_t>();
    m.world = field(root, "world", what).as<int>();
    m.layout = field(root, "layout", what).as<std::string>();
    m.dp = m.world;  // format 1: data parallel only
    if (const YAML::Node mesh = root["mesh"]) {
      m.dp = field(mesh, "dp", what).as<int>();
      m.tp = field(mesh, "tp", what).as<int>();
      m.pp = field(mesh, "pp", what).as<int>();
    }
    m.recipe = field(root, "recipe", what).as<std::string>();
    for (const auto& f : field(root, "shards", what)) {
      m.shards.push_back({field(f, "file", what).as<std::string>(), field(f, "bytes", what).as<std::uint64_t>()});
    }
    for (const auto& t : field(root, "tensors", what)) {
      TensorEntry e;
      e.name = field(t, "name", what).as<std::string>();
      e.dtype = dtype_from(field(t, "dtype", what).as<std::string>(), what);
      for (const auto& d : field(t, "shape", what)) e.shape.push_back(d.as<std::int64_t>());
      for (const auto& c : field(t, "chunks", what)) {
        Chunk k;
        k.file = field(c, "file", what).as<std::string>();
        k.offset = field(c, "offset", what).as<std::uint64_t>();
        k.begin = field(c, "begin", what).as<std::int64_t>();
        k.end = field(c, "end", what).as<std::int64_t>();
        if (c["count"]) {
          k.count = c["count"].as<std::int64_t>();
          k.stride = field(c, "stride", what).as<std::int64_t>();
        }
        const auto h = parse_hex64(field(c, "xxh64", what).as<std::string>());
        if (!h) throw ManifestError(what + ": tensor " + e.name + ": a chunk's xxh64 is not 16 hex digits");
        k.xxh64 = *h;
        e.chunks.push_back(std::move(k));
      }
      m.tensors.push_back(std::move(e));
    }
  } catch (const YAML::Exception& e) {
    throw ManifestError(what + ": " + e.what());
  }
  for (auto& t : m.tensors) {
    std::sort(t.chunks.begin(), t.chunks.end(), [](const Chunk& a, const Chunk& b) { return a.begin < b.begin; });
    // Every run of every chunk, in element order: they must tile the tensor.
    std::vector<std::pair<std::int64_t, std::int64_t>> runs;
    for (const auto& c : t.chunks) {
      if (c.end <= c.begin || c.count < 1 || (c.count > 1 && c.stride < c.end - c.begin)) {
        throw ManifestError(fmt::format("{}: tensor {}: a chunk of runs [{}, {}) x {} (stride {}) is malformed", what,
                                        t.name, c.begin, c.end, c.count, c.stride));
      }
      for (std::int64_t k = 0; k < c.count; ++k) runs.emplace_back(c.begin + k * c.stride, c.end + k * c.stride);
    }
    std::sort(runs.begin(), runs.end());
    std::int64_t at = 0;
    for (const auto& [begin, end] : runs) {
      if (begin != at) {
        throw ManifestError(fmt::format("{}: tensor {}: chunks do not cover elements [{}, ...) exactly once", what,
                                        t.name, at));
      }
      at = end;
    }
    if (at != shape_numel(t.shape)) {
      throw ManifestError(fmt::format("{}: tensor {}: chunks cover {} of {} elements", what, t.name, at,
                                      shape_numel(t.shape)));
    }
  }
  return m;
}

Manifest read_manifest(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ManifestError(file.string() + ": missing (the checkpoint was never committed)");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_manifest(ss.str(), file.string());
}

std::string step_dir_name(std::int64_t step) { return fmt::format("step-{:06}", step); }

std::optional<std::int64_t> parse_step_dir(const std::string& name) {
  if (name.size() < 6 || name.rfind("step-", 0) != 0) return std::nullopt;
  std::int64_t v = 0;
  for (std::size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || i > 20) return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

}  // namespace trainer::checkpoint
