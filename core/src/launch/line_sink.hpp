// LineSink: reassembles one worker stream (its stdout or its stderr) into whole lines and
// writes each as "[rank R] line\n" to the supervisor's descriptor. Every write carries only
// whole lines, so lines of different ranks never interleave mid-line.
#pragma once
#include <cstddef>
#include <string>

namespace trainer::launch {

class LineSink {
 public:
  // A line longer than `max_line` bytes is emitted in pieces of that size, so a worker that
  // never writes a newline cannot make the supervisor buffer without bound.
  LineSink(std::string prefix, int fd, std::size_t max_line = 64 * 1024);

  void feed(const char* data, std::size_t n);  // writes every line completed by `data`
  void finish();  // writes a last line that lacks its newline, adding one

 private:
  void emit(std::string& out, const char* line, std::size_t n);

  std::string prefix_;
  int fd_;
  std::size_t max_line_;
  std::string partial_;
};

}  // namespace trainer::launch
