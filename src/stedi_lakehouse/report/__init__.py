"""`stedi-lake report`: the lake's numbers read without a JVM (summary), drawn (figures), on
one self-contained page (page)."""
