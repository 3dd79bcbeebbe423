// resolve_launch: flags over the scheduler's environment over the recipe, and the errors a
// wrong combination gives; the worker identity the supervisor hands down.
#include <catch2/catch.hpp>

#include "launch/launch_config.hpp"
#include "launch/net.hpp"

using namespace trainer::launch;
using Env = std::map<std::string, std::string>;

TEST_CASE("without flags or environment the recipe decides", "[launch][config]") {
  auto c = resolve_launch({}, 1, {});
  CHECK(c.nproc == 1);
  CHECK(c.nnodes == 1);
  CHECK(c.node_rank == 0);
  CHECK(c.master_addr == "127.0.0.1");
  CHECK(c.master_port == 0);
  CHECK(resolve_launch({}, 4, {}).nproc == 4);
  CHECK_THROWS_WITH(resolve_launch({}, 0, {}), "nproc must be at least 1, got 0 (from launch.nproc in the recipe)");
}

TEST_CASE("flags beat the environment, which beats the recipe", "[launch][config]") {
  Env env = {{"LOCAL_WORLD_SIZE", "2"}};
  CHECK(resolve_launch({}, 4, env).nproc == 2);
  CliLaunchFlags flags;
  flags.nproc = 3;
  CHECK(resolve_launch(flags, 4, env).nproc == 3);

  Env slurm = {{"SLURM_NNODES", "2"}, {"SLURM_NODEID", "1"}, {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "29600"}};
  CliLaunchFlags single;
  single.nnodes = 1;
  single.node_rank = 0;
  auto c = resolve_launch(single, 1, slurm);
  CHECK(c.nnodes == 1);
  CHECK(c.node_rank == 0);

  CliLaunchFlags master;
  master.master = "10.1.2.3:4000";
  c = resolve_launch(master, 1, slurm);
  CHECK(c.master_addr == "10.1.2.3");
  CHECK(c.master_port == 4000);
}

TEST_CASE("Slurm variables", "[launch][config]") {
  Env env = {{"SLURM_NNODES", "4"},
             {"SLURM_NODEID", "2"},
             {"SLURM_NTASKS_PER_NODE", "8"},
             {"MASTER_ADDR", "gpu-001"},
             {"MASTER_PORT", "29501"}};
  auto c = resolve_launch({}, 1, env);
  CHECK(c.nproc == 8);
  CHECK(c.nnodes == 4);
  CHECK(c.node_rank == 2);
  CHECK(c.master_addr == "gpu-001");
  CHECK(c.master_port == 29501);

  env.erase("SLURM_NNODES");
  env["SLURM_JOB_NUM_NODES"] = "3";
  env["SLURM_NTASKS_PER_NODE"] = "2(x3)";
  c = resolve_launch({}, 1, env);
  CHECK(c.nnodes == 3);
  CHECK(c.nproc == 2);

  env["SLURM_NTASKS_PER_NODE"] = "2(x2),1";
  CHECK_THROWS_WITH(resolve_launch({}, 1, env), Catch::Contains("different task counts"));
  env["SLURM_NTASKS_PER_NODE"] = "2";
  env["SLURM_NODEID"] = "three";
  CHECK_THROWS_WITH(resolve_launch({}, 1, env), "SLURM_NODEID must be an integer, got 'three'");

  // Several nodes, but nobody said where node 0's store is.
  Env no_master = {{"SLURM_NNODES", "2"}, {"SLURM_NODEID", "0"}};
  CHECK_THROWS_WITH(resolve_launch({}, 1, no_master),
                    Catch::Contains("2 nodes (nnodes from SLURM_NNODES)") && Catch::Contains("--master host:port"));
}

TEST_CASE("torchrun-style variables", "[launch][config]") {
  Env env = {{"WORLD_SIZE", "8"}, {"LOCAL_WORLD_SIZE", "4"}, {"GROUP_RANK", "1"}, {"MASTER_ADDR", "10.0.0.1"}};
  auto c = resolve_launch({}, 1, env);
  CHECK(c.nproc == 4);
  CHECK(c.nnodes == 2);
  CHECK(c.node_rank == 1);
  CHECK(c.master_addr == "10.0.0.1");
  CHECK(c.master_port == kDefaultMasterPort);  // MASTER_PORT unset: torchrun's default

  env.erase("GROUP_RANK");
  env["RANK"] = "5";  // a global worker rank: node 5 / 4 = 1
  CHECK(resolve_launch({}, 1, env).node_rank == 1);
  env["NODE_RANK"] = "0";  // NODE_RANK wins over RANK
  CHECK(resolve_launch({}, 1, env).node_rank == 0);

  // WORLD_SIZE without LOCAL_WORLD_SIZE counts launchers, one per node (Kubeflow style).
  Env per_node = {{"WORLD_SIZE", "3"}, {"RANK", "2"}, {"MASTER_ADDR", "m"}, {"MASTER_PORT", "1234"}};
  c = resolve_launch({}, 2, per_node);
  CHECK(c.nnodes == 3);
  CHECK(c.node_rank == 2);
  CHECK(c.nproc == 2);
  CHECK(c.master_port == 1234);

  // Set on purpose, these win over Slurm's ambient variables.
  Env both = {{"SLURM_NNODES", "4"}, {"SLURM_NODEID", "3"}, {"WORLD_SIZE", "2"}, {"LOCAL_WORLD_SIZE", "2"}};
  c = resolve_launch({}, 1, both);
  CHECK(c.nnodes == 1);
  CHECK(c.node_rank == 0);

  CHECK_THROWS_WITH(resolve_launch({}, 1, {{"WORLD_SIZE", "6"}, {"LOCAL_WORLD_SIZE", "4"}}),
                    "WORLD_SIZE=6 is not a multiple of LOCAL_WORLD_SIZE=4");
  CHECK_THROWS_WITH(resolve_launch({}, 1, {{"MASTER_ADDR", "m"}, {"MASTER_PORT", "70000"}}),
                    Catch::Contains("MASTER_PORT must be in 0..65535"));
}

TEST_CASE("bad flag combinations name the flag", "[launch][config]") {
  CliLaunchFlags f;
  f.nproc = 0;
  CHECK_THROWS_WITH(resolve_launch(f, 1, {}), "nproc must be at least 1, got 0 (from --nproc)");

  f = {};
  f.nnodes = 2;
  f.node_rank = 2;
  f.master = "node0:29500";
  CHECK_THROWS_WITH(resolve_launch(f, 1, {}),
                    "node rank 2 (from --node-rank) must be in 0..1 for nnodes 2 (from --nnodes)");
  f.node_rank = -1;
  CHECK_THROWS_AS(resolve_launch(f, 1, {}), LaunchError);

  f = {};
  f.nnodes = 2;
  f.node_rank = 1;
  CHECK_THROWS_WITH(resolve_launch(f, 1, {}), Catch::Contains("pass --master host:port"));
  f.master = "node0:0";
  CHECK_THROWS_WITH(resolve_launch(f, 1, {}), Catch::Contains("port 0 (from --master)"));
  f.master = "node0";
  CHECK_THROWS_WITH(resolve_launch(f, 1, {}), "--master expects host:port, got 'node0'");
  f.master = "node0:29500";
  auto c = resolve_launch(f, 1, {});
  CHECK(c.master_addr == "node0");
  CHECK(c.node_rank == 1);

  f = {};
  f.nnodes = 0;
  CHECK_THROWS_WITH(resolve_launch(f, 1, {}), Catch::Contains("nnodes must be at least 1"));
}

TEST_CASE("parse_launch_flag takes both spellings and leaves other arguments", "[launch][config]") {
  std::vector<std::string> args = {"run", "--nproc", "4", "--master=10.0.0.1:29500", "recipe.yaml",
                                   "--nnodes=2", "--node-rank", "1", "--steps", "3"};
  CliLaunchFlags f;
  std::vector<std::string> rest;
  for (std::size_t i = 0; i < args.size();)
    if (!parse_launch_flag(args, i, f)) rest.push_back(args[i++]);
  CHECK(f.nproc == 4);
  CHECK(f.nnodes == 2);
  CHECK(f.node_rank == 1);
  CHECK(f.master == "10.0.0.1:29500");
  CHECK(rest == std::vector<std::string>{"run", "recipe.yaml", "--steps", "3"});

  std::size_t i = 0;
  CHECK_THROWS_WITH(parse_launch_flag({"--nproc"}, i, f), "--nproc needs a value");
  i = 0;
  CHECK_THROWS_WITH(parse_launch_flag({"--nproc=four"}, i, f), "--nproc must be an integer, got 'four'");
  i = 0;
  CHECK_THROWS_WITH(parse_launch_flag({"--master", "x"}, i, f), "--master expects host:port, got 'x'");
  i = 0;
  CHECK_FALSE(parse_launch_flag({"--nprocs", "2"}, i, f));
}

TEST_CASE("host:port parsing", "[launch][config]") {
  CHECK(split_host_port("node0:29500") == std::pair<std::string, int>("node0", 29500));
  CHECK(split_host_port("[::1]:80") == std::pair<std::string, int>("::1", 80));
  CHECK(split_host_port("a:0") == std::pair<std::string, int>("a", 0));
  for (const char* bad : {"node0", ":80", "node0:", "node0:x", "node0:65536", "::1:80", "[::1]80", "h:-1"})
    CHECK_FALSE(split_host_port(bad));
  CHECK(join_host_port("::1", 80) == "[::1]:80");
  CHECK(join_host_port("h", 1) == "h:1");
}

TEST_CASE("the worker identity round-trips through the environment", "[launch][config]") {
  CHECK_FALSE(worker_identity_from_env({}).has_value());

  WorkerIdentity id{5, 8, 1, 4, "10.0.0.1", 29500};
  Env env;
  for (auto& kv : worker_environment(id)) {
    auto eq = kv.find('=');
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  CHECK(env.at("TRAINER_STORE") == "10.0.0.1:29500");
  auto back = worker_identity_from_env(env);
  REQUIRE(back);
  CHECK(back->rank == 5);
  CHECK(back->world_size == 8);
  CHECK(back->local_rank == 1);
  CHECK(back->local_world_size == 4);
  CHECK(back->store_addr == "10.0.0.1");
  CHECK(back->store_port == 29500);

  auto broken = env;
  broken.erase("TRAINER_STORE");
  CHECK_THROWS_WITH(worker_identity_from_env(broken), "TRAINER_RANK is set but TRAINER_STORE is not");
  broken = env;
  broken["TRAINER_RANK"] = "8";
  CHECK_THROWS_WITH(worker_identity_from_env(broken), Catch::Contains("outside TRAINER_WORLD_SIZE=8"));
  broken = env;
  broken["TRAINER_LOCAL_RANK"] = "4";
  CHECK_THROWS_AS(worker_identity_from_env(broken), LaunchError);
  broken = env;
  broken["TRAINER_STORE"] = "nowhere";
  CHECK_THROWS_WITH(worker_identity_from_env(broken), Catch::Contains("TRAINER_STORE expects host:port"));
}
