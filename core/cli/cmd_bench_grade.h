#ifndef EGRC_CMD_BENCH_GRADE_H
#define EGRC_CMD_BENCH_GRADE_H

/* egrc bench grade FILE; argv[2] is "grade". Returns an exit code. */
int egrc_cmd_bench_grade(int argc, char **argv);

#endif
