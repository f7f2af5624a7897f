// How far apart two words are, for "did you mean ...?" (config keys, command names).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark {

// Optimal string alignment distance: Levenshtein plus adjacent transpositions ("clinet" is one step
// from "client"). Anything past `limit` is reported as limit + 1.
std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t limit);

// The candidate nearest to `word` within max_edits, if any (the first of equals).
std::optional<std::string> nearest_word(std::string_view word, const std::vector<std::string>& candidates,
                                        std::size_t max_edits = 2);

}  // namespace bulwark
