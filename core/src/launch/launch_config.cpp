#include "launch/launch_config.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>

#include "launch/net.hpp"

extern char** environ;

namespace trainer::launch {

namespace {

// A value and where it came from, so errors can say which flag or variable to fix.
template <typename T>
struct Sourced {
  T value;
  std::string from;
};

int parse_int(std::string_view text, std::string_view what) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    throw LaunchError(fmt::format("{} must be an integer, got '{}'", what, text));
  return value;
}

std::optional<std::string> lookup(const std::map<std::string, std::string>& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

std::optional<Sourced<int>> env_int(const std::map<std::string, std::string>& env, const std::string& name) {
  auto text = lookup(env, name);
  if (!text) return std::nullopt;
  return Sourced<int>{parse_int(*text, name), name};
}

// SLURM_NTASKS_PER_NODE is a number; the SLURM_TASKS_PER_NODE form "8(x2),4" is accepted
// too, as long as every node gets the same count (workers per node are uniform here).
int parse_slurm_tasks(const std::string& text, const std::string& name) {
  std::optional<int> count;
  std::string_view rest = text;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    int n = parse_int(item.substr(0, item.find('(')), name);
    if (count && *count != n)
      throw LaunchError(fmt::format("{}='{}' gives nodes different task counts; pass --nproc", name, text));
    count = n;
  }
  if (!count) throw LaunchError(fmt::format("{} is empty", name));
  return *count;
}

bool any_set(const std::map<std::string, std::string>& env, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (lookup(env, n)) return true;
  return false;
}

void apply_torchrun(const std::map<std::string, std::string>& env, Sourced<int>& nproc, Sourced<int>& nnodes,
                    Sourced<int>& node_rank) {
  auto local = env_int(env, "LOCAL_WORLD_SIZE");
  auto world = env_int(env, "WORLD_SIZE");
  auto rank = env_int(env, "RANK");
  if (local) {
    if (local->value < 1) throw LaunchError(fmt::format("LOCAL_WORLD_SIZE must be at least 1, got {}", local->value));
    nproc = *local;
  }
  if (world && local) {
    if (world->value % local->value != 0)
      throw LaunchError(fmt::format("WORLD_SIZE={} is not a multiple of LOCAL_WORLD_SIZE={}", world->value,
                                    local->value));
    nnodes = {world->value / local->value, "WORLD_SIZE / LOCAL_WORLD_SIZE"};
  } else if (world) {
    nnodes = *world;  // one launcher per node: WORLD_SIZE counts launchers
  }
  if (auto v = env_int(env, "NODE_RANK")) {
    node_rank = *v;
  } else if (auto g = env_int(env, "GROUP_RANK")) {
    node_rank = *g;
  } else if (rank && local) {
    node_rank = {rank->value / local->value, "RANK / LOCAL_WORLD_SIZE"};
  } else if (rank && world) {
    node_rank = *rank;
  }
}

void apply_slurm(const std::map<std::string, std::string>& env, Sourced<int>& nproc, Sourced<int>& nnodes,
                 Sourced<int>& node_rank) {
  if (auto v = env_int(env, "SLURM_NNODES")) {
    nnodes = *v;
  } else if (auto j = env_int(env, "SLURM_JOB_NUM_NODES")) {
    nnodes = *j;
  }
  if (auto v = env_int(env, "SLURM_NODEID")) node_rank = *v;
  if (auto t = lookup(env, "SLURM_NTASKS_PER_NODE"))
    nproc = {parse_slurm_tasks(*t, "SLURM_NTASKS_PER_NODE"), "SLURM_NTASKS_PER_NODE"};
}

}  // namespace

LaunchConfig resolve_launch(const CliLaunchFlags& flags, int recipe_nproc,
                            const std::map<std::string, std::string>& env) {
  Sourced<int> nproc{recipe_nproc, "launch.nproc in the recipe"};
  Sourced<int> nnodes{1, "the default"};
  Sourced<int> node_rank{0, "the default"};

  if (any_set(env, {"WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK"}))
    apply_torchrun(env, nproc, nnodes, node_rank);
  else if (any_set(env, {"SLURM_NNODES", "SLURM_JOB_NUM_NODES", "SLURM_NODEID"}))
    apply_slurm(env, nproc, nnodes, node_rank);

  std::optional<Sourced<std::pair<std::string, int>>> master;
  auto addr = lookup(env, "MASTER_ADDR");
  auto port_text = lookup(env, "MASTER_PORT");
  if (addr || port_text) {
    int port = port_text ? parse_int(*port_text, "MASTER_PORT") : (addr ? kDefaultMasterPort : 0);
    if (port < 0 || port > 65535) throw LaunchError(fmt::format("MASTER_PORT must be in 0..65535, got {}", port));
    master = {{addr.value_or("127.0.0.1"), port}, port_text ? "MASTER_ADDR/MASTER_PORT" : "MASTER_ADDR"};
  }

  if (flags.nproc) nproc = {*flags.nproc, "--nproc"};
  if (flags.nnodes) nnodes = {*flags.nnodes, "--nnodes"};
  if (flags.node_rank) node_rank = {*flags.node_rank, "--node-rank"};
  if (flags.master) {
    auto hp = split_host_port(*flags.master);
    if (!hp) throw LaunchError(fmt::format("--master expects host:port, got '{}'", *flags.master));
    master = {*hp, "--master"};
  }

  if (nproc.value < 1)
    throw LaunchError(fmt::format("nproc must be at least 1, got {} (from {})", nproc.value, nproc.from));
  if (nnodes.value < 1)
    throw LaunchError(fmt::format("nnodes must be at least 1, got {} (from {})", nnodes.value, nnodes.from));
  if (node_rank.value < 0 || node_rank.value >= nnodes.value)
    throw LaunchError(fmt::format("node rank {} (from {}) must be in 0..{} for nnodes {} (from {})", node_rank.value,
                                  node_rank.from, nnodes.value - 1, nnodes.value, nnodes.from));
  if (nnodes.value > 1 && !master)
    throw LaunchError(fmt::format(
        "a launch over {} nodes (nnodes from {}) needs node 0's store address: pass --master host:port "
        "(or set MASTER_ADDR and MASTER_PORT)",
        nnodes.value, nnodes.from));
  if (nnodes.value > 1 && master->value.second == 0)
    throw LaunchError(fmt::format("port 0 (from {}) picks a free port, which only works on a single node; "
                                  "give node 0's store a fixed port",
                                  master->from));

  LaunchConfig out;
  out.nproc = nproc.value;
  out.nnodes = nnodes.value;
  out.node_rank = node_rank.value;
  if (master) {
    out.master_addr = master->value.first;
    out.master_port = master->value.second;
  }
  return out;
}

bool parse_launch_flag(const std::vector<std::string>& args, std::size_t& i, CliLaunchFlags& flags) {
  static const char* const kNames[] = {"--nproc", "--nnodes", "--node-rank", "--master"};
  const std::string& arg = args[i];
  for (const char* name : kNames) {
    std::string_view n = name;
    if (arg.compare(0, n.size(), n) != 0 || (arg.size() > n.size() && arg[n.size()] != '=')) continue;
    std::string value;
    if (arg.size() > n.size()) {
      value = arg.substr(n.size() + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw LaunchError(fmt::format("{} needs a value", n));
    }
    ++i;
    if (n == "--master") {
      if (!split_host_port(value)) throw LaunchError(fmt::format("--master expects host:port, got '{}'", value));
      flags.master = value;
    } else {
      int v = parse_int(value, n);
      (n == "--nproc" ? flags.nproc : n == "--nnodes" ? flags.nnodes : flags.node_rank) = v;
    }
    return true;
  }
  return false;
}

std::optional<WorkerIdentity> worker_identity_from_env(const std::map<std::string, std::string>& env) {
  if (!lookup(env, "TRAINER_RANK")) return std::nullopt;
  auto required = [&](const char* name) {
    auto v = env_int(env, name);
    if (!v) throw LaunchError(fmt::format("TRAINER_RANK is set but {} is not", name));
    return v->value;
  };
  WorkerIdentity id;
  id.rank = required("TRAINER_RANK");
  id.world_size = required("TRAINER_WORLD_SIZE");
  id.local_rank = required("TRAINER_LOCAL_RANK");
  id.local_world_size = required("TRAINER_LOCAL_WORLD_SIZE");
  auto store = lookup(env, "TRAINER_STORE");
  if (!store) throw LaunchError("TRAINER_RANK is set but TRAINER_STORE is not");
  auto hp = split_host_port(*store);
  if (!hp || hp->second == 0) throw LaunchError(fmt::format("TRAINER_STORE expects host:port, got '{}'", *store));
  id.store_addr = hp->first;
  id.store_port = hp->second;
  if (id.world_size < 1 || id.rank < 0 || id.rank >= id.world_size)
    throw LaunchError(fmt::format("TRAINER_RANK={} is outside TRAINER_WORLD_SIZE={}", id.rank, id.world_size));
  if (id.local_world_size < 1 || id.local_world_size > id.world_size || id.local_rank < 0 ||
      id.local_rank >= id.local_world_size)
    throw LaunchError(fmt::format("TRAINER_LOCAL_RANK={} / TRAINER_LOCAL_WORLD_SIZE={} do not fit TRAINER_WORLD_SIZE={}",
                                  id.local_rank, id.local_world_size, id.world_size));
  return id;
}

std::vector<std::string> worker_environment(const WorkerIdentity& id) {
  return {
      fmt::format("TRAINER_RANK={}", id.rank),
      fmt::format("TRAINER_WORLD_SIZE={}", id.world_size),
      fmt::format("TRAINER_LOCAL_RANK={}", id.local_rank),
      fmt::format("TRAINER_LOCAL_WORLD_SIZE={}", id.local_world_size),
      fmt::format("TRAINER_STORE={}", join_host_port(id.store_addr, id.store_port)),
  };
}

std::map<std::string, std::string> environment_map() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry = *e;
    auto eq = entry.find('=');
    if (eq != std::string_view::npos) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

}  // namespace trainer::launch
