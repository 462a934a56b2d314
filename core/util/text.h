#pragma once
// ASCII case folding for names a user types (method ids, type names, presets):
// locale-independent, so "q4_k_m" means Q4_K_M everywhere.
#include <string>
#include <string_view>

namespace ll {

inline std::string asciiUpper(std::string_view s)
{
    std::string u(s);
    for (char& c : u)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    return u;
}

inline std::string asciiLower(std::string_view s)
{
    std::string l(s);
    for (char& c : l)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return l;
}

} // namespace ll
