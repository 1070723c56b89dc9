/* egrc run: runs a Lua recipe (see docs/recipes.md). */
#ifndef EGRC_CMD_RUN_H
#define EGRC_CMD_RUN_H

/* argv[1] is "run". Returns 0, 1 for a runtime failure, 2 for a usage or
 * recipe error, having printed the message. */
int egrc_cmd_run(int argc, char **argv);

#endif
