#include "recipe/suggest.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace trainer::recipe {

int edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  const std::size_t m = b.size();
  std::vector<std::vector<int>> d(n + 1, std::vector<int>(m + 1, 0));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = static_cast<int>(i);
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = static_cast<int>(j);
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  int best_distance = 3;
  for (const auto& c : candidates) {
    const int dist = edit_distance(word, c);
    if (dist < best_distance && dist < static_cast<int>(word.size())) {
      best = c;
      best_distance = dist;
    }
  }
  if (best) return best;
  // A prefix this short matches too much to be a useful guess.
  if (word.size() < 3) return std::nullopt;
  for (const auto& c : candidates) {
    if (c.size() >= 3 && (c.starts_with(word) || word.starts_with(c))) return c;
  }
  return std::nullopt;
}

std::string suggestion_hint(std::string_view word, const std::vector<std::string>& candidates,
                            std::string_view what) {
  if (auto match = closest_match(word, candidates)) {
    return fmt::format("did you mean '{}'?", *match);
  }
  if (candidates.empty()) return fmt::format("this section accepts no {}", what);
  return fmt::format("accepted {}: {}", what, join(candidates));
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

}  // namespace trainer::recipe
