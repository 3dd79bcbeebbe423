// Mesh: the job's ranks arranged as dp × tp × pp. Tensor-parallel ranks are adjacent (they
// exchange activations inside every layer, so they belong on the fastest links), then the
// data-parallel replicas, then the pipeline stages:
//   rank = (pp_i * dp + dp_i) * tp + tp_i
// A group along one axis holds the ranks that differ only in that axis's coordinate.
#pragma once
#include <string>
#include <vector>

namespace trainer {

enum class Axis { dp, tp, pp };

const char* axis_name(Axis axis);

struct MeshCoords {
  int dp = 0, tp = 0, pp = 0;
  int at(Axis axis) const { return axis == Axis::dp ? dp : axis == Axis::tp ? tp : pp; }
  bool operator==(const MeshCoords&) const = default;
};

class Mesh {
 public:
  Mesh(int dp, int tp, int pp);  // each >= 1

  int world() const { return dp_ * tp_ * pp_; }
  int size(Axis axis) const { return axis == Axis::dp ? dp_ : axis == Axis::tp ? tp_ : pp_; }
  MeshCoords coords(int rank) const;
  int rank_of(MeshCoords c) const;
  // The global ranks of `rank`'s group along `axis`, in order of that axis's coordinate
  // (so a member's group rank is its coordinate).
  std::vector<int> group(Axis axis, int rank) const;
  // A name unique within the job, the same for every member: "tp.pp0.dp1", "dp.pp0.tp0";
  // axes of one rank are left out ("dp" in a pure data-parallel job).
  std::string group_name(Axis axis, int rank) const;

 private:
  void check_rank(int rank) const;
  int dp_, tp_, pp_;
};

}  // namespace trainer
