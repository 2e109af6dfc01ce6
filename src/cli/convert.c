/* placeholder until implemented */
typedef int mq_placeholder_convert;
