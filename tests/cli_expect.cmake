# cli_expect.cmake — runs a command and checks its exit status and output,
# for the end-to-end tests of the `kiln` command (see CMakeLists.txt):
#
#   cmake -DRC=2 -DEXPECT=regex [-DREJECT=regex] [-DFILE=path -DFILE_EXPECT=regex]
#         -P cli_expect.cmake -- COMMAND ARGS...
#
# EXPECT must match stdout and stderr together; REJECT must not; FILE, if
# given, must exist after the command and match FILE_EXPECT.
set(cmd)
set(after_dashes FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(after_dashes)
    list(APPEND cmd "${CMAKE_ARGV${i}}")
  elseif("${CMAKE_ARGV${i}}" STREQUAL "--")
    set(after_dashes TRUE)
  endif()
endforeach()
if(NOT cmd)
  message(FATAL_ERROR "cli_expect: no command after --")
endif()

if(DEFINED FILE)
  file(REMOVE "${FILE}")
endif()
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(JOIN " " shown ${cmd})
set(all "${out}${err}")

if(NOT "${rc}" STREQUAL "${RC}")
  message(FATAL_ERROR "${shown}\nexit status ${rc}, expected ${RC}\n--- stdout\n${out}--- stderr\n${err}")
endif()
if(NOT "${EXPECT}" STREQUAL "" AND NOT all MATCHES "${EXPECT}")
  message(FATAL_ERROR "${shown}\noutput does not match '${EXPECT}'\n--- stdout\n${out}--- stderr\n${err}")
endif()
if(NOT "${REJECT}" STREQUAL "" AND all MATCHES "${REJECT}")
  message(FATAL_ERROR "${shown}\noutput matches '${REJECT}' and should not\n--- stdout\n${out}--- stderr\n${err}")
endif()
if(DEFINED FILE)
  if(NOT EXISTS "${FILE}")
    message(FATAL_ERROR "${shown}\ndid not write ${FILE}")
  endif()
  file(READ "${FILE}" content)
  if(NOT "${FILE_EXPECT}" STREQUAL "" AND NOT content MATCHES "${FILE_EXPECT}")
    message(FATAL_ERROR "${shown}\n${FILE} does not match '${FILE_EXPECT}':\n${content}")
  endif()
endif()
message(STATUS "${shown}: exit ${rc} as expected")
