"""vouch_fuzzer: one libFuzzer target, its seed corpus and its test. See BUILD.bazel."""

def vouch_fuzzer(name, srcs, deps, dictionary = None):
    """`name` (the fuzz binary) and `name`_test (runs it over corpus/`name`)."""
    native.cc_binary(
        name = name,
        testonly = True,
        srcs = srcs,
        deps = deps + select({
            ":fuzzing": [],
            "//conditions:default": [":standalone_driver"],
        }),
        linkopts = select({
            ":fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
    native.sh_test(
        name = name + "_test",
        size = "medium",
        srcs = ["run_fuzzer.sh"],
        args = [
            "$(location :%s)" % name,
            "tests/fuzz/corpus/" + name,
            "$(location %s)" % dictionary if dictionary else "",
        ],
        data = [":" + name] + native.glob(["corpus/%s/*" % name]) +
               ([dictionary] if dictionary else []),
    )
