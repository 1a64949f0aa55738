// The sanitizers' run-time options for every executable of a WARDEN_SANITIZE
// build (the top CMakeLists.txt links this file into each of them), so that a
// test under CTest, a test started by hand and wardend run from the build
// directory all behave alike. ASAN_OPTIONS, UBSAN_OPTIONS and LSAN_OPTIONS in
// the environment are read after these and override them.
//
// - Every report is fatal (UBSan's too: -fno-sanitize-recover=all) and ends
//   the process with exit code 86, which wardend and wardenctl never use, so
//   a report cannot pass for an expected failure (tests that expect exit 1).
//   tests/integration/harness.py also fails a test on a report in any output
//   it captures, whatever the exit code.
// - Leaks are checked at exit (LeakSanitizer); the only ones ignored are the
//   third-party libraries' own, listed with a reason in lsan.supp.
// - Stack traces for UBSan reports too; use-after-return and initialisation
//   order are checked as well (not ASan's defaults).

#ifndef WARDEN_SANITIZER_DIR
#error "compiled by the top CMakeLists.txt with WARDEN_SANITIZE=ON only"
#endif

extern "C" {

const char* __asan_default_options() {
  return "halt_on_error=1:exitcode=86:detect_leaks=1:detect_stack_use_after_return=1:"
         "check_initialization_order=1:strict_init_order=1";
}

const char* __lsan_default_options() {
  return "exitcode=86:print_suppressions=0:suppressions=" WARDEN_SANITIZER_DIR "/lsan.supp";
}

const char* __ubsan_default_options() {
  return "halt_on_error=1:exitcode=86:print_stacktrace=1";
}

}  // extern "C"
