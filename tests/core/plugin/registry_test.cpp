// The plugin registry: finding plugins on the search path, and the errors a user sees when
// a plugin is missing, built for another ABI, or not a plugin at all.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <unistd.h>

#include "plugin/registry.hpp"
#include "trainer/optimizer.hpp"

using namespace trainer;
namespace fs = std::filesystem;

namespace {

const fs::path kPlugins = TRAINER_TEST_PLUGIN_DIR;
const fs::path kFixtures = TRAINER_TEST_FIXTURE_DIR;

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("trainer-registry-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const PluginError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the built-in plugins are found with their descriptors", "[plugin]") {
  const auto& d = find_plugin(PluginKind::optimizer, "adamw", {kPlugins});
  CHECK(d.abi_version == kAbiVersion);
  CHECK(std::string(d.name) == "adamw");
  CHECK(d.kind == PluginKind::optimizer);
  const auto scan = scan_plugins({kPlugins});
  std::vector<std::string> names;
  for (const auto& p : scan.plugins) names.push_back(std::string(plugin_kind_name(p.descriptor->kind)) + "/" + p.descriptor->name);
  for (const char* expected : {"backend/cpu", "model/gpt", "optimizer/adamw", "optimizer/sgd", "recompute/none",
                               "recompute/full", "recompute/selective"}) {
    CHECK(std::find(names.begin(), names.end(), expected) != names.end());
  }
  CHECK(scan.problems.empty());
}

TEST_CASE("a missing plugin is reported with the ones of that kind that exist", "[plugin]") {
  const auto msg = message_of([] { find_plugin(PluginKind::optimizer, "adamm", {kPlugins}); });
  CHECK_THAT(msg, Catch::Contains("no optimizer plugin named 'adamm'"));
  CHECK_THAT(msg, Catch::Contains("available: "));
  CHECK_THAT(msg, Catch::Contains("adamw"));
  CHECK_THAT(msg, Catch::Contains("sgd"));
  CHECK_THAT(msg, !Catch::Contains("gpt"));  // other kinds are not offered
  CHECK_THAT(msg, Catch::Contains(kPlugins.string()));
}

TEST_CASE("a plugin built for another ABI is refused, naming both versions and the file", "[plugin]") {
  const auto file = kFixtures / "trainer_plugin_wrong_abi.so";
  REQUIRE(fs::exists(file));
  const auto msg = message_of([&] { load_plugin_file(file); });
  CHECK_THAT(msg, Catch::Contains(file.string()));
  CHECK_THAT(msg, Catch::Contains("ABI version " + std::to_string(kAbiVersion + 41)));
  CHECK_THAT(msg, Catch::Contains("this trainer uses ABI version " + std::to_string(kAbiVersion)));
}

TEST_CASE("a file that is not a plugin is refused with the reason", "[plugin]") {
  SECTION("a shared library without the descriptor") {
    const auto file = kFixtures / "trainer_plugin_no_descriptor.so";
    const auto msg = message_of([&] { load_plugin_file(file); });
    CHECK_THAT(msg, Catch::Contains(file.string()));
    CHECK_THAT(msg, Catch::Contains("not a trainer plugin"));
    CHECK_THAT(msg, Catch::Contains("trainer_plugin_descriptor"));
  }
  SECTION("a text file named like a plugin") {
    const auto dir = fresh_dir("text");
    const auto file = dir / "trainer_plugin_notes.so";
    std::ofstream(file) << "these are not machine instructions\n";
    const auto msg = message_of([&] { load_plugin_file(file); });
    CHECK_THAT(msg, Catch::Contains(file.string()));
    CHECK_THAT(msg, Catch::Contains("not a loadable plugin library"));
    // Scanning carries on past it and says why it was skipped.
    const auto scan = scan_plugins({dir, kPlugins});
    REQUIRE(scan.problems.size() == 1);
    CHECK(scan.problems[0].path == file);
    CHECK_FALSE(scan.plugins.empty());
  }
}

TEST_CASE("a lookup that fails mentions the unusable files it skipped", "[plugin]") {
  const auto msg = message_of([] { find_plugin(PluginKind::optimizer, "from_the_future", {kFixtures, kPlugins}); });
  CHECK_THAT(msg, Catch::Contains("no optimizer plugin named 'from_the_future'"));
  CHECK_THAT(msg, Catch::Contains("skipped"));
  CHECK_THAT(msg, Catch::Contains("ABI version"));
}

TEST_CASE("the search path puts the recipe's folders, then TRAINER_PLUGIN_PATH, then the install", "[plugin]") {
  ::setenv("TRAINER_PLUGIN_PATH", "/env/one:/env/two", 1);
  const auto dirs = plugin_search_path({"/recipe/dir"});
  ::unsetenv("TRAINER_PLUGIN_PATH");
  REQUIRE(dirs.size() == 4);
  CHECK(dirs[0] == "/recipe/dir");
  CHECK(dirs[1] == "/env/one");
  CHECK(dirs[2] == "/env/two");
  CHECK(dirs[3].filename() == "plugins");
  CHECK(fs::equivalent(dirs[3], kPlugins));
}

TEST_CASE("a created plugin object has the interface its kind promises", "[plugin]") {
  const auto& d = find_plugin(PluginKind::optimizer, "sgd", {kPlugins});
  auto cfg = ConfigNode::map();
  cfg["weight_decay"] = ConfigNode::scalar("0.0");
  auto opt = create_plugin<Optimizer>(d, PluginContext{cfg, nullptr});
  CHECK(opt != nullptr);
  CHECK(opt->state_bytes() == 0);
}
