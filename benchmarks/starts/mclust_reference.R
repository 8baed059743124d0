# Data and reference numbers for benchmarks/bench_starts.py, made with R's mclust 6.0.0 (Debian r-cran-mclust,
# r-cran-mass):   cd benchmarks/starts && Rscript mclust_reference.R
# Writes each data set as data/<name>.csv (numeric columns only) and mclust.csv: the log-likelihood of
# Mclust's fit (default hierarchical start) for every data set, model (VVV, EEE, VVI, VII) and G = 1..9.
suppressMessages({library(mclust); library(MASS)})
dir.create("data", showWarnings = FALSE)
sets <- list(
  faithful = faithful,
  iris = iris[, 1:4],
  crabs = crabs[, 4:8],
  thyroid = thyroid[, -1],
  diabetes = diabetes[, -1],
  banknote = banknote[, -1],
  wreath = wreath,
  geyser = geyser,
  cars = mtcars[, c("mpg", "disp", "hp", "drat", "wt", "qsec")]
)
out <- NULL
for (name in names(sets)) {
  X <- as.matrix(sets[[name]])
  write.csv(X, file.path("data", paste0(name, ".csv")), row.names = FALSE)
  for (model in c("VVV", "EEE", "VVI", "VII")) {
    for (G in 1:9) {
      fit <- tryCatch(Mclust(X, G = G, modelNames = model, verbose = FALSE), error = function(e) NULL)
      loglik <- if (is.null(fit)) NA else fit$loglik
      out <- rbind(out, data.frame(data = name, model = model, G = G, loglik = loglik))
    }
  }
}
write.csv(out, "mclust.csv", row.names = FALSE)
