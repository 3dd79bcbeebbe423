// What a finished run left in <run dir>/metrics.jsonl, read generically: every field of every
// line is kept, so fields added to the run log later (comm times, checksums) can be checked
// by name without changing this reader.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace trainer::sweep {

struct JsonValue {
  enum class Kind { number, string, boolean, null, other };
  Kind kind = Kind::null;
  double number = 0;  // numbers; booleans as 0/1
  std::string text;   // strings; the JSON text of anything else
};

// A flat view of one line: nested objects become dotted keys ("comm.allreduce_s").
using Record = std::map<std::string, JsonValue>;

// One JSON object per line; nullopt (with *error set) when the line is not one.
std::optional<Record> parse_json_line(const std::string& line, std::string* error = nullptr);

// The values of one field over a run's steps (or evaluations), with the step of each.
struct Series {
  std::vector<std::int64_t> steps;
  std::vector<double> values;  // NaN where the log wrote null or a non-number
};

struct RunMetrics {
  std::vector<Record> steps;    // "event":"step", in file order
  std::vector<Record> evals;    // "event":"eval"
  std::optional<Record> summary;  // the last "event":"summary"
  std::vector<std::string> problems;  // lines that could not be read, "line 7: ..."

  // step_losses, val_losses, step.FIELD, eval.FIELD; nullopt when no record has the field.
  std::optional<Series> series(const std::string& metric) const;
  // A summary field; nullopt when there is no summary or it lacks the field.
  std::optional<JsonValue> summary_field(const std::string& name) const;
  std::optional<double> summary_number(const std::string& name) const;
};

// A missing file reads as no records (the run did not get far enough to write any).
RunMetrics read_metrics(const std::filesystem::path& file);

}  // namespace trainer::sweep
