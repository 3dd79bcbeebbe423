#include "engine/mesh.hpp"

#include <catch2/catch.hpp>
#include <set>

using trainer::Axis;
using trainer::Mesh;
using trainer::MeshCoords;

TEST_CASE("mesh: tp ranks are adjacent, then dp, then pp") {
  const Mesh m(2, 2, 2);
  REQUIRE(m.world() == 8);
  CHECK(m.coords(0) == MeshCoords{0, 0, 0});
  CHECK(m.coords(1) == MeshCoords{0, 1, 0});
  CHECK(m.coords(2) == MeshCoords{1, 0, 0});
  CHECK(m.coords(5) == MeshCoords{0, 1, 1});
  CHECK(m.coords(7) == MeshCoords{1, 1, 1});
  for (int r = 0; r < m.world(); ++r) {
    const auto c = m.coords(r);
    CHECK(m.rank_of(c) == r);
    CHECK(r == (c.pp * 2 + c.dp) * 2 + c.tp);
  }
}

TEST_CASE("mesh: groups hold the ranks differing in one coordinate, ordered by it") {
  const Mesh m(3, 2, 2);  // world 12
  CHECK(m.group(Axis::tp, 4) == std::vector<int>{4, 5});
  CHECK(m.group(Axis::dp, 5) == std::vector<int>{1, 3, 5});
  CHECK(m.group(Axis::pp, 3) == std::vector<int>{3, 9});
  for (Axis axis : {Axis::dp, Axis::tp, Axis::pp}) {
    std::set<std::string> names;
    std::set<int> covered;
    for (int r = 0; r < m.world(); ++r) {
      const auto g = m.group(axis, r);
      REQUIRE(static_cast<int>(g.size()) == m.size(axis));
      // A member's group rank is its coordinate along the axis, and every member names the
      // group alike.
      CHECK(g.at(static_cast<std::size_t>(m.coords(r).at(axis))) == r);
      for (int member : g) CHECK(m.group_name(axis, member) == m.group_name(axis, r));
      names.insert(m.group_name(axis, r));
      covered.insert(r);
    }
    CHECK(static_cast<int>(names.size()) == m.world() / m.size(axis));
    CHECK(static_cast<int>(covered.size()) == m.world());
  }
  CHECK(m.group_name(Axis::tp, 5) == "tp.pp0.dp2");
  CHECK(m.group_name(Axis::dp, 5) == "dp.pp0.tp1");
}

TEST_CASE("mesh: bad degrees and ranks are refused") {
  CHECK_THROWS_AS(Mesh(0, 1, 1), std::invalid_argument);
  const Mesh m(2, 1, 1);
  CHECK_THROWS_AS(m.coords(2), std::out_of_range);
  CHECK_THROWS_AS(m.rank_of({2, 0, 0}), std::out_of_range);
  CHECK(m.group(Axis::tp, 1) == std::vector<int>{1});
  CHECK(m.group_name(Axis::dp, 1) == "dp");
  CHECK(Mesh(2, 2, 1).group_name(Axis::tp, 3) == "tp.dp1");
}
