"""vouch_benchmark: a Google Benchmark binary plus a test that runs it once."""

def vouch_benchmark(name, srcs, deps):
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps,
    )
    native.sh_test(
        name = name + "_runs",
        size = "small",
        srcs = ["//bench:run_once.sh"],
        args = ["$(location :%s)" % name],
        data = [":" + name],
    )
