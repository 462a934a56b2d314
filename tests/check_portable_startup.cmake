# Refuses code that runs before main() in a file compiled for AVX-512
# (core/*/*_avx512.cpp): a static object's constructor there is compiled with
# those flags and runs on every CPU, so the program would die of SIGILL at
# start-up on any x86-64 without AVX-512, before the run-time dispatch
# (kernels/cpu_features.h) could choose the portable kernels. GCC and clang
# name a file's start-up code _GLOBAL__sub_I_<file>.
#   cmake -DNM=nm "-DPROGRAMS=a;b" -P check_portable_startup.cmake
set(problems "")
foreach(program ${PROGRAMS})
  execute_process(COMMAND ${NM} ${program} OUTPUT_VARIABLE symbols RESULT_VARIABLE rc ERROR_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cannot list the symbols of ${program} with ${NM}")
  endif()
  string(REGEX MATCHALL "_GLOBAL__sub_I_[A-Za-z0-9_]*avx512[A-Za-z0-9_.]*" found "${symbols}")
  foreach(s ${found})
    string(APPEND problems "${program}: ${s} runs at start-up with AVX-512 instructions\n")
  endforeach()
endforeach()
if(problems)
  message(FATAL_ERROR "start-up code compiled for AVX-512 (make the object constexpr or build it on first use from a portable file):\n${problems}")
endif()
message(STATUS "no start-up code in the AVX-512 files: ${PROGRAMS}")
