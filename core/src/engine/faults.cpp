#include "engine/faults.hpp"

#include <cstdlib>

namespace trainer {

std::vector<Fault> parse_faults(const ConfigNode& recipe) {
  std::vector<Fault> faults;
  if (!recipe.has("faults")) return faults;
  for (const auto& item : recipe.at("faults").items()) {
    Fault f;
    f.step = item.get_int("step");
    f.rank = static_cast<int>(item.get_int("rank"));
    const std::string& kind = item.get_string("kind");
    f.kind = kind == "kill" ? Fault::Kind::kill : kind == "nan" ? Fault::Kind::nan : Fault::Kind::slow;
    if (kind == "bitflip") f.kind = Fault::Kind::bitflip;
    if (kind == "spike") f.kind = Fault::Kind::spike;
    if (kind == "hang") f.kind = Fault::Kind::hang;
    if (kind == "corrupt") f.kind = Fault::Kind::corrupt;
    if (kind == "kill_during_save") f.kind = Fault::Kind::kill_during_save;
    f.every_attempt = item.has("attempts") && item.get_string("attempts") == "all";
    f.seconds = item.get_double("seconds");
    faults.push_back(f);
  }
  return faults;
}

std::vector<Fault> faults_for_attempt(std::vector<Fault> faults, int attempt) {
  if (attempt == 0) return faults;
  std::erase_if(faults, [](const Fault& f) { return !f.every_attempt; });
  return faults;
}

int job_attempt() {
  const char* text = std::getenv("TRAINER_ATTEMPT");
  return text && *text ? std::atoi(text) : 0;
}

}  // namespace trainer
