# Reference numbers for mclust's fourteen covariance models, made with R's mclust 6.0.0 (Debian r-cran-mclust,
# r-cran-mass):   cd benchmarks/starts && Rscript mclust_reference.R && cd ../models && Rscript mclust_models.R
# Reads the data sets benchmarks/starts/mclust_reference.R writes (../starts/data/<name>.csv) and writes
# mclust_models.csv: for every data set, model and G = 1..9, Mclust's fit from its default hierarchical start
# (log-likelihood, number of parameters, BIC and ICL in mclust's sign: higher is better; NA where it fails).
suppressMessages(library(mclust))
models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
sets <- c("iris", "faithful", "diabetes", "thyroid", "banknote", "wreath", "crabs", "geyser", "cars")
out <- NULL
for (name in sets) {
  X <- as.matrix(read.csv(file.path("..", "starts", "data", paste0(name, ".csv"))))
  for (model in models) {
    for (G in 1:9) {
      fit <- tryCatch(Mclust(X, G = G, modelNames = model, verbose = FALSE), error = function(e) NULL)
      if (is.null(fit)) {
        row <- data.frame(data = name, model = model, G = G, loglik = NA, df = NA, bic = NA, icl = NA)
      } else {
        row <- data.frame(data = name, model = model, G = G, loglik = fit$loglik, df = fit$df, bic = fit$bic,
                          icl = icl(fit))
      }
      out <- rbind(out, row)
    }
  }
}
write.csv(out, "mclust_models.csv", row.names = FALSE)
