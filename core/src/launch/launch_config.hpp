// How many processes to start where: the launch configuration of `trainer run`, resolved
// from command-line flags, then the environment a scheduler set (Slurm or torchrun style),
// then the recipe's `launch.nproc`. And the identity a worker reads from the variables the
// supervisor sets for it.
//
// Precedence, field by field: a flag wins; else the environment; else the recipe (nproc)
// or the default. From the environment, torchrun-style variables are used when any is set
// (they are set on purpose), else Slurm's (ambient in every Slurm job step):
//
//   field      torchrun style                                Slurm
//   nproc      LOCAL_WORLD_SIZE                               SLURM_NTASKS_PER_NODE ("8" or "8(x2)")
//   nnodes     WORLD_SIZE / LOCAL_WORLD_SIZE, or WORLD_SIZE   SLURM_NNODES or SLURM_JOB_NUM_NODES
//              alone (one launcher per node, e.g. Kubeflow)
//   node_rank  NODE_RANK, GROUP_RANK, RANK / LOCAL_WORLD_SIZE, SLURM_NODEID
//              or RANK alone (as for nnodes)
//   master     MASTER_ADDR:MASTER_PORT (port 29500 when only MASTER_ADDR is set), for both
//
// `trainer run` is the per-node launcher: start it once per node (e.g. `srun --ntasks-per-node=1`),
// and it starts nproc workers there.
#pragma once
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace trainer::launch {

// A bad launch configuration or worker environment; the message says which flag or
// variable gave the offending value.
class LaunchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CliLaunchFlags {
  std::optional<int> nproc;          // --nproc N: workers on this node
  std::optional<int> nnodes;         // --nnodes N
  std::optional<int> node_rank;      // --node-rank R
  std::optional<std::string> master; // --master host:port: where node 0 serves the store
};

struct LaunchConfig {
  int nproc = 1;      // workers per node; world size = nnodes * nproc
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: any free port (single node only)
};

// Torchrun's default rendezvous port, used when MASTER_ADDR is set without MASTER_PORT.
inline constexpr int kDefaultMasterPort = 29500;

// Throws LaunchError for malformed values (naming the flag or variable), nproc < 1,
// node_rank outside [0, nnodes), or several nodes without a master address and port.
LaunchConfig resolve_launch(const CliLaunchFlags& flags, int recipe_nproc,
                            const std::map<std::string, std::string>& env);

// If args[i] is a launch flag (`--nproc 4` or `--nproc=4`, likewise --nnodes, --node-rank,
// --master), stores it in `flags`, advances i past its value and returns true. Returns
// false for any other argument. Throws LaunchError for a missing or malformed value.
bool parse_launch_flag(const std::vector<std::string>& args, std::size_t& i, CliLaunchFlags& flags);

// What the supervisor tells each worker, through TRAINER_RANK, TRAINER_WORLD_SIZE,
// TRAINER_LOCAL_RANK, TRAINER_LOCAL_WORLD_SIZE and TRAINER_STORE=host:port.
struct WorkerIdentity {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string store_addr;
  int store_port = 0;
};

// nullopt when TRAINER_RANK is not set (not started by a supervisor). Throws LaunchError
// when it is set but the variables are incomplete, malformed or inconsistent.
std::optional<WorkerIdentity> worker_identity_from_env(const std::map<std::string, std::string>& env);

// The variables that worker_identity_from_env reads back, as NAME=value strings.
std::vector<std::string> worker_environment(const WorkerIdentity& id);

// A snapshot of this process's environment, for resolve_launch and worker_identity_from_env.
std::map<std::string, std::string> environment_map();

}  // namespace trainer::launch
