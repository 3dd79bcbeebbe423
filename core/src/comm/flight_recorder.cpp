#include "comm/flight_recorder.hpp"

#include <fmt/format.h>

#include <sstream>
#include <stdexcept>

#include "util/text.hpp"

namespace trainer::comm {

const char* state_name(FlightEntry::State s) {
  switch (s) {
    case FlightEntry::State::issued: return "issued";
    case FlightEntry::State::completed: return "completed";
    case FlightEntry::State::failed: return "failed";
    case FlightEntry::State::dropped: return "dropped";
  }
  return "?";
}

namespace {

FlightEntry::State state_from(const std::string& name) {
  for (auto s : {FlightEntry::State::issued, FlightEntry::State::completed, FlightEntry::State::failed,
                 FlightEntry::State::dropped}) {
    if (name == state_name(s)) return s;
  }
  throw std::runtime_error("unknown state '" + name + "'");
}

// Tabs and newlines separate fields and entries; group names, ops and reasons hold none,
// but an error message might.
std::string clean(std::string s) {
  for (char& c : s) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, sep)) out.push_back(field);
  if (!line.empty() && line.back() == sep) out.emplace_back();
  return out;
}

}  // namespace

FlightRecorder::FlightRecorder(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
  ring_.reserve(capacity_);
}

FlightRecorder& FlightRecorder::process() {
  static FlightRecorder* recorder = new FlightRecorder();  // leaked: usable until _exit
  return *recorder;
}

double FlightRecorder::now_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::uint64_t FlightRecorder::begin(const std::string& group, const std::string& op, std::uint64_t seq, int peer,
                                    std::uint64_t bytes) {
  FlightEntry e;
  e.group = group;
  e.op = op;
  e.seq = seq;
  e.peer = peer;
  e.bytes = bytes;
  e.step = step_.load();
  e.issued_s = now_s();
  std::lock_guard lock(mutex_);
  e.id = next_id_++;
  if (ring_.size() < capacity_) {
    ring_.push_back(std::move(e));
  } else {
    ring_[e.id % capacity_] = std::move(e);
  }
  return next_id_ - 1;
}

FlightEntry* FlightRecorder::find(std::uint64_t id) {
  if (id >= next_id_ || next_id_ - id > capacity_) return nullptr;
  FlightEntry& e = ring_[id % capacity_];
  return e.id == id ? &e : nullptr;
}

void FlightRecorder::end(std::uint64_t id, FlightEntry::State state, const std::string& error) {
  const double t = now_s();
  std::lock_guard lock(mutex_);
  FlightEntry* e = find(id);
  if (!e || e->state != FlightEntry::State::issued) return;
  e->state = state;
  e->ended_s = t;
  e->error = error;
}

void FlightRecorder::end_when(std::uint64_t id, std::function<bool()> done) {
  std::lock_guard lock(mutex_);
  probes_.emplace_back(id, std::move(done));
}

void FlightRecorder::poll() {
  std::lock_guard polling(poll_mutex_);
  std::vector<std::pair<std::uint64_t, std::function<bool()>>> probes;
  {
    std::lock_guard lock(mutex_);
    probes.swap(probes_);
  }
  std::vector<std::pair<std::uint64_t, std::function<bool()>>> pending;
  std::vector<std::uint64_t> done;
  for (auto& p : probes) {
    if (p.second()) {
      done.push_back(p.first);
    } else {
      pending.push_back(std::move(p));
    }
  }
  for (auto id : done) end(id, FlightEntry::State::completed);
  std::lock_guard lock(mutex_);
  // Probes added while this poll ran stay after the ones still pending.
  for (auto& p : probes_) pending.push_back(std::move(p));
  probes_.swap(pending);
}

std::optional<FlightEntry> FlightRecorder::oldest_issued() const {
  std::lock_guard lock(mutex_);
  const FlightEntry* oldest = nullptr;
  for (const auto& e : ring_) {
    if (e.state == FlightEntry::State::issued && (!oldest || e.id < oldest->id)) oldest = &e;
  }
  if (!oldest) return std::nullopt;
  return *oldest;
}

FlightRecord FlightRecorder::snapshot(const std::string& reason) const {
  FlightRecord r;
  r.rank = rank_.load();
  r.step = step_.load();
  r.now_s = now_s();
  r.reason = reason;
  std::lock_guard lock(mutex_);
  const std::uint64_t first = next_id_ > capacity_ ? next_id_ - capacity_ : 0;
  for (std::uint64_t id = first; id < next_id_; ++id) r.entries.push_back(ring_[id % capacity_]);
  return r;
}

// Line 1: "flight 1 <rank> <step> <now_s>", line 2: the reason, then one line per entry.
std::string encode_flight_record(const FlightRecord& r) {
  std::string out = fmt::format("flight 1\t{}\t{}\t{:.6f}\n{}\n", r.rank, r.step, r.now_s, clean(r.reason));
  for (const auto& e : r.entries) {
    out += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.6f}\t{:.6f}\t{}\t{}\n", e.id, clean(e.group), clean(e.op), e.seq,
                       e.peer, e.bytes, e.step, e.issued_s, e.ended_s, state_name(e.state), clean(e.error));
  }
  return out;
}

FlightRecord decode_flight_record(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  FlightRecord r;
  try {
    if (!std::getline(in, line)) throw std::runtime_error("empty");
    const auto head = split(line, '\t');
    if (head.size() != 4 || head[0] != "flight 1") throw std::runtime_error("not a flight record");
    r.rank = std::stoi(head[1]);
    r.step = std::stoll(head[2]);
    r.now_s = std::stod(head[3]);
    std::getline(in, r.reason);
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto f = split(line, '\t');
      if (f.size() != 11) throw std::runtime_error("an entry has " + std::to_string(f.size()) + " fields");
      FlightEntry e;
      e.id = std::stoull(f[0]);
      e.group = f[1];
      e.op = f[2];
      e.seq = std::stoull(f[3]);
      e.peer = std::stoi(f[4]);
      e.bytes = std::stoull(f[5]);
      e.step = std::stoll(f[6]);
      e.issued_s = std::stod(f[7]);
      e.ended_s = std::stod(f[8]);
      e.state = state_from(f[9]);
      e.error = f[10];
      r.entries.push_back(std::move(e));
    }
  } catch (const std::logic_error& e) {  // stoi and friends
    throw std::runtime_error(std::string("flight record: malformed number (") + e.what() + ")");
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("flight record: ") + e.what());
  }
  return r;
}

std::string flight_record_json(const FlightRecord& r) {
  std::string out = fmt::format("{{\n  \"rank\": {},\n  \"step\": {},\n  \"now_s\": {:.6f},\n  \"reason\": {},\n"
                                "  \"entries\": [",
                                r.rank, r.step, r.now_s, json_quote(r.reason));
  for (std::size_t i = 0; i < r.entries.size(); ++i) {
    const auto& e = r.entries[i];
    out += i ? ",\n    " : "\n    ";
    out += fmt::format("{{\"id\": {}, \"group\": {}, \"op\": {}, \"seq\": {}, \"peer\": {}, \"bytes\": {}, "
                       "\"step\": {}, \"issued_s\": {:.6f}, \"ended_s\": {}, \"state\": \"{}\"",
                       e.id, json_quote(e.group), json_quote(e.op), e.seq, e.peer, e.bytes, e.step, e.issued_s,
                       e.ended_s < 0 ? std::string("null") : fmt::format("{:.6f}", e.ended_s), state_name(e.state));
    if (!e.error.empty()) out += fmt::format(", \"error\": {}", json_quote(e.error));
    out += "}";
  }
  out += r.entries.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

}  // namespace trainer::comm
