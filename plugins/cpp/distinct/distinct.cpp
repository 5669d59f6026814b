// A Bulkhead task in C++ (ABI v1: a WASI preview 1 command), built with Debian's clang++-14,
// wasi-libc and libc++ for WASI. It reads the task document on stdin and counts, in the
// upstream outputs (`"inputs": ...`), the rows and the distinct values of the field named by
// `params.field` (a scan of the JSON text: enough for the flat rows the Rust `clean` task
// writes; a real task would use a JSON library such as nlohmann/json, which builds for WASI).
// It logs one structured record to stderr. With `"fail":"transient"` in its parameters it
// exits 75 (EX_TEMPFAIL): the host records a transient failure and retries it.
//
// Build: clang++-14 --target=wasm32-wasi --sysroot=/usr -O2 -fno-exceptions -o distinct.wasm distinct.cpp
#include <cstdio>
#include <iostream>
#include <iterator>
#include <set>
#include <string>
#include <string_view>

namespace {

// The JSON value starting at `at` in `text`, as written (a string keeps its quotes).
std::string_view value_at(std::string_view text, size_t at) {
    while (at < text.size() && text[at] == ' ') ++at;
    size_t end = at;
    if (end < text.size() && text[end] == '"') {
        for (++end; end < text.size() && text[end] != '"'; ++end) {
            if (text[end] == '\\') ++end;
        }
        ++end;
    } else {
        while (end < text.size() && text[end] != ',' && text[end] != '}' && text[end] != ']') ++end;
    }
    return text.substr(at, std::min(end, text.size()) - at);
}

// The string value of the first `"key":` in `text`, without quotes; empty if absent.
std::string string_param(std::string_view text, std::string_view key) {
    std::string needle = "\"" + std::string(key) + "\":";
    size_t at = text.find(needle);
    if (at == std::string_view::npos) return {};
    std::string_view v = value_at(text, at + needle.size());
    if (v.size() < 2 || v.front() != '"') return {};
    return std::string(v.substr(1, v.size() - 2));
}

}  // namespace

int main() {
    std::string doc(std::istreambuf_iterator<char>(std::cin), {});
    std::string_view text(doc);
    if (text.find("\"fail\":\"transient\"") != std::string_view::npos) {
        std::fputs("{\"level\":\"warn\",\"msg\":\"asked to fail; try again\"}\n", stderr);
        return 75;
    }
    std::string field = string_param(text, "field");
    if (field.empty()) {
        std::fputs("{\"level\":\"error\",\"msg\":\"params.field (a string) is required\"}\n", stderr);
        return 1;
    }
    size_t inputs = text.find("\"inputs\":");
    std::string_view rest = inputs == std::string_view::npos ? std::string_view{} : text.substr(inputs);
    std::string needle = "\"" + field + "\":";
    std::set<std::string, std::less<>> distinct;
    size_t rows = 0;
    for (size_t at = rest.find(needle); at != std::string_view::npos; at = rest.find(needle, at + 1)) {
        distinct.emplace(value_at(rest, at + needle.size()));
        ++rows;
    }
    std::printf("{\"language\":\"c++\",\"field\":\"%s\",\"rows\":%zu,\"distinct\":%zu}\n", field.c_str(),
                rows, distinct.size());
    std::fprintf(stderr, "{\"level\":\"info\",\"msg\":\"counted\",\"rows\":%zu}\n", rows);
    return 0;
}
