#include "engine/mesh.hpp"

#include <stdexcept>

namespace trainer {

const char* axis_name(Axis axis) {
  switch (axis) {
    case Axis::dp: return "dp";
    case Axis::tp: return "tp";
    case Axis::pp: return "pp";
  }
  return "?";
}

Mesh::Mesh(int dp, int tp, int pp) : dp_(dp), tp_(tp), pp_(pp) {
  if (dp < 1 || tp < 1 || pp < 1) {
    throw std::invalid_argument("mesh degrees must be at least 1 (dp " + std::to_string(dp) + ", tp " +
                                std::to_string(tp) + ", pp " + std::to_string(pp) + ")");
  }
}

void Mesh::check_rank(int rank) const {
  if (rank < 0 || rank >= world()) {
    throw std::out_of_range("rank " + std::to_string(rank) + " is outside the mesh of " + std::to_string(world()) +
                            " ranks");
  }
}

MeshCoords Mesh::coords(int rank) const {
  check_rank(rank);
  MeshCoords c;
  c.tp = rank % tp_;
  c.dp = (rank / tp_) % dp_;
  c.pp = rank / (tp_ * dp_);
  return c;
}

int Mesh::rank_of(MeshCoords c) const {
  if (c.dp < 0 || c.dp >= dp_ || c.tp < 0 || c.tp >= tp_ || c.pp < 0 || c.pp >= pp_) {
    throw std::out_of_range("mesh coordinates (dp " + std::to_string(c.dp) + ", tp " + std::to_string(c.tp) + ", pp " +
                            std::to_string(c.pp) + ") are outside the mesh");
  }
  return (c.pp * dp_ + c.dp) * tp_ + c.tp;
}

std::vector<int> Mesh::group(Axis axis, int rank) const {
  MeshCoords c = coords(rank);
  std::vector<int> ranks;
  for (int i = 0; i < size(axis); ++i) {
    (axis == Axis::dp ? c.dp : axis == Axis::tp ? c.tp : c.pp) = i;
    ranks.push_back(rank_of(c));
  }
  return ranks;
}

std::string Mesh::group_name(Axis axis, int rank) const {
  const MeshCoords c = coords(rank);
  std::string name = axis_name(axis);
  // The other coordinates identify the group; an axis of one rank adds nothing, so a pure
  // data-parallel job's group is plain "dp".
  if (axis != Axis::pp && pp_ > 1) name += ".pp" + std::to_string(c.pp);
  if (axis != Axis::dp && dp_ > 1) name += ".dp" + std::to_string(c.dp);
  if (axis != Axis::tp && tp_ > 1) name += ".tp" + std::to_string(c.tp);
  return name;
}

}  // namespace trainer
