//! Unit-test support.

/// Says why a test does not run here. Where every test must run (`cargo xtask test` and
/// the kernel matrix set `TRACER_TEST_NO_SKIP`), that is a failure instead.
pub fn skip(why: &str) {
    if std::env::var_os("TRACER_TEST_NO_SKIP").is_some() {
        panic!("this test must run here, but: {why}");
    }
    eprintln!("SKIPPED: {why}");
}
