/* matrix: `natmesh-netsim matrix`, two natmesh servants behind every pair of router
 * behaviours; a grid of how they ended up connected, printed and written as Markdown and
 * JSON (docs/netsim.md, "The behaviour matrix"). */
#ifndef NSIM_MATRIX_H
#define NSIM_MATRIX_H

struct nsim_matrix_opts {
  const char *self;       /* this program, run once per cell (`run CELL.xml`) */
  const char *base;       /* --dir: where the cells' run folders go */
  const char *bindir;     /* --bindir, or NULL */
  const char *behaviours; /* comma-separated names, NULL for all */
  const char *out;        /* folder for matrix.md, matrix.json and cells/ */
  long hold_s;            /* how long a cell waits for each servant's outcome */
};

/* Runs every cell and writes the grid. Returns the exit code: 0, 1 when a cell could not
 * run (its topology failed), 2 for usage errors, 130 when interrupted. */
int nsim_matrix(const struct nsim_matrix_opts *mo);

#endif
