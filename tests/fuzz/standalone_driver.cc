// main() for the fuzz targets when they are not built with libFuzzer (the default gcc build):
// runs LLVMFuzzerTestOneInput once on every file in the directories (or files) named on the
// command line, so `bazel test //...` replays the seed corpus and every regression input as a
// plain test. Arguments starting with '-' are libFuzzer flags and are ignored, so the same
// command line (run_fuzzer.sh) serves both builds.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  // A copy sized exactly to the input, so an overread is past the allocation (as in libFuzzer).
  std::vector<uint8_t> input(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(input.data(), input.size());
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  int inputs = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.empty() || arg[0] == '-') continue;
    if (fs::is_directory(arg)) {
      for (const fs::directory_entry& entry : fs::directory_iterator(arg)) {
        if (!entry.is_regular_file()) continue;
        RunFile(entry.path());
        ++inputs;
      }
    } else {
      RunFile(arg);
      ++inputs;
    }
  }
  std::printf("ran %d inputs\n", inputs);
  return 0;
}
