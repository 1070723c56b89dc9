/* egrc grade: whether a prediction matches a gold answer, by the rules of
 * grade.h. The prediction is a response (its final answer is extracted) or,
 * when it holds no marked answer, a bare answer. */
#ifndef EGRC_CMD_GRADE_H
#define EGRC_CMD_GRADE_H

/* argv[1] is "grade". Prints "correct" or "incorrect" and returns 0; returns
 * 2 with the usage on stderr for missing, repeated or unknown flags. */
int egrc_cmd_grade(int argc, char **argv);

#endif
