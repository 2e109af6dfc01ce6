/*
 * Limits every layer shares, so that the loader, the interpreter and every
 * graph rewrite refuse the same inputs.
 */
#ifndef MQ_CORE_LIMITS_H
#define MQ_CORE_LIMITS_H

/*
 * Subgraphs (If/Loop/Scan bodies) nested deeper than this are refused, so a
 * corrupt or hostile model cannot blow the stack of a recursive walk.  Real
 * models nest a few levels at most.
 */
#define MQ_MAX_SUBGRAPH_DEPTH 32

#endif
