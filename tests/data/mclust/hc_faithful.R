# Reference numbers for tests/test_hierarchical.py, made with R's mclust 6.0.0 (Debian r-cran-mclust):
#   Rscript tests/data/mclust/hc_faithful.R
# Writes the merges of mclust's default hierarchy (model VVV, hcUse "SVD") on R's faithful data, and its
# partitions into 1 to 6 clusters; the EEE fit with 3 components from it has log-likelihood -1126.326.
suppressMessages(library(mclust))
X <- as.matrix(faithful)
h <- hc(X, modelName = "VVV", use = "SVD")
write.csv(t(h), "hc_faithful_merges.csv", row.names = FALSE)
write.csv(hclass(h, 1:6), "hc_faithful_partitions.csv", row.names = FALSE)
cat("EEE, 3 components:", Mclust(X, G = 3, modelNames = "EEE", verbose = FALSE)$loglik, "\n")
