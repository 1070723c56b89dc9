/* egrc tokenize: the token ids a tokenizer.json gives a text, or many texts
 * (one JSON string per line on stdin), without a recipe. */
#ifndef EGRC_CMD_TOKENIZE_H
#define EGRC_CMD_TOKENIZE_H

/* argv[1] is "tokenize". Prints one line of space-separated ids per text;
 * returns 0, or 2 for a usage error, a tokenizer egrc cannot load or an
 * input line that is not a JSON string (named by its line number). */
int egrc_cmd_tokenize(int argc, char **argv);

#endif
