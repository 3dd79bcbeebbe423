// "Did you mean" for misspelled keys, choices and plugin names.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace trainer::recipe {

// Optimal-string-alignment distance: Levenshtein plus swaps of adjacent characters, the
// most common typo ("nlayer" / "n_layer", "lyaer" / "layer").
int edit_distance(std::string_view a, std::string_view b);

// The closest candidate within distance 2 (and closer than the word's own length, so that
// "lr" does not suggest "dp"), else one the word is a prefix of or that is a prefix of it.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

// "did you mean 'x'?" when there is a close match, else "accepted <what>: a, b, c".
std::string suggestion_hint(std::string_view word, const std::vector<std::string>& candidates,
                            std::string_view what = "keys");

std::string join(const std::vector<std::string>& items, std::string_view separator = ", ");

}  // namespace trainer::recipe
