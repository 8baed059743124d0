# Reference numbers for equal proportions, one-feature models, Mclust's default selection and the
# decomposition of a fit, made with R's mclust 6.0.0 (Debian r-cran-mclust, r-cran-mass):
#   cd benchmarks/starts && Rscript mclust_reference.R && cd ../models && Rscript mclust_selection.R
# Reads the data sets benchmarks/starts/mclust_reference.R writes (../starts/data/<name>.csv) and writes
#   mclust_equalpro.csv    iris and faithful, every model, G = 2..5, equalPro = TRUE (log-likelihood, df, BIC in
#                          mclust's sign)
#   mclust_one_feature.csv models E and V, G = 1..9, on single columns of the data sets
#   mclust_selection.csv   Mclust(X) with its defaults: the chosen model and G, its log-likelihood, df, BIC, ICL
#   mclust_iris_vev2.csv   Mclust(iris, G = 2, "VEV"): each row's classification and uncertainty
#   mclust_decomposition.csv  scale, shape and orientation of Mclust's fits of iris (G = 3) for every model
suppressMessages(library(mclust))
models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
read <- function(name) as.matrix(read.csv(file.path("..", "starts", "data", paste0(name, ".csv"))))
# With equal proportions, the inner (M-step) iterations of EVE and VVE can go on without end (iris, EVE, G = 4):
# at most 1000 of them per M-step, and 10000 EM iterations.
limited <- function(expr) tryCatch(expr, error = function(e) NULL)

out <- NULL
for (name in c("iris", "faithful")) {
  X <- read(name)
  for (model in models) for (G in 2:5) {
    fit <- limited(Mclust(X, G = G, modelNames = model, control = emControl(equalPro = TRUE, itmax = c(10000, 1000)), verbose = FALSE))
    message(name, " ", model, " ", G, if (is.null(fit)) " failed" else "")
    if (is.null(fit)) next
    out <- rbind(out, data.frame(data = name, model = model, G = G, loglik = fit$loglik, df = fit$df,
                                 bic = fit$bic))
  }
}
write.csv(out, "mclust_equalpro.csv", row.names = FALSE)

out <- NULL
for (name in c("iris", "faithful", "diabetes")) {
  X <- read(name)
  for (column in seq_len(ncol(X))) for (model in c("E", "V")) for (G in 1:9) {
    fit <- tryCatch(Mclust(X[, column], G = G, modelNames = model, verbose = FALSE), error = function(e) NULL)
    if (is.null(fit)) next
    out <- rbind(out, data.frame(data = name, column = column - 1, model = model, G = G, loglik = fit$loglik,
                                 df = fit$df, bic = fit$bic, icl = icl(fit)))
  }
}
write.csv(out, "mclust_one_feature.csv", row.names = FALSE)

out <- NULL
for (name in c("iris", "faithful", "diabetes", "thyroid", "banknote", "wreath", "crabs", "geyser", "cars")) {
  fit <- Mclust(read(name), verbose = FALSE)
  out <- rbind(out, data.frame(data = name, model = fit$modelName, G = fit$G, loglik = fit$loglik, df = fit$df,
                               bic = fit$bic, icl = icl(fit)))
}
write.csv(out, "mclust_selection.csv", row.names = FALSE)

fit <- Mclust(read("iris"), G = 2, modelNames = "VEV", verbose = FALSE)
write.csv(data.frame(classification = fit$classification, uncertainty = fit$uncertainty),
          "mclust_iris_vev2.csv", row.names = FALSE)

out <- NULL
X <- read("iris")
for (model in models) {
  fit <- Mclust(X, G = 3, modelNames = model, verbose = FALSE)
  v <- fit$parameters$variance
  if (is.null(v$scale)) v <- c(sigma2decomp(v$sigma), sigma = list(v$sigma))  # EEE, VVV keep only sigma
  scale <- rep_len(v$scale, 3)
  shape <- if (is.null(v$shape)) matrix(1, 4, 3) else matrix(v$shape, 4, 3)
  orientation <- if (is.null(v$orientation)) array(diag(4), c(4, 4, 3)) else array(v$orientation, c(4, 4, 3))
  for (k in 1:3) {
    out <- rbind(out, data.frame(model = model, k = k - 1, loglik = fit$loglik, scale = scale[k],
                                 shape = paste(format(shape[, k], digits = 15), collapse = " "),
                                 orientation = paste(format(c(orientation[, , k]), digits = 15), collapse = " "),
                                 sigma = paste(format(c(v$sigma[, , k]), digits = 15), collapse = " ")))
  }
}
write.csv(out, "mclust_decomposition.csv", row.names = FALSE)
