# Reference numbers for maximum a posteriori fits with mclust's default conjugate prior, made with R's mclust 6.0.0
# (Debian r-cran-mclust):   cd benchmarks/prior && Rscript mclust_prior.R
# Writes
#   diabetes.csv        mclust's diabetes data (glucose, insulin, sspg), which the tests read
#   labels.csv          the hierarchical start Mclust uses (hc with mclust.options("hcModelName"/"hcUse")) cut at
#                       G = 2..5 for iris, faithful and diabetes, and at G = 2..5 for the one-feature data sets
#                       (hc "V"): columns data, G, row, label
#   mclust_prior.csv    me(X, model, z = unmap(labels), prior = priorControl()) for every model mclust fits with a
#                       prior and G = 1..5, EM run to a relative change of 1e-14 (at 1e-10, the E fits of waiting stop on a plateau): log-likelihood, df, BIC (mclust's
#                       sign), iterations
#   mclust_prior_params.csv  the same fits' weights, means and covariances for G = 3 (iris, faithful, diabetes)
#   mclust_prior_selection.csv  Mclust(X, prior = priorControl()) with its other defaults: the chosen model and G
suppressMessages(library(mclust))
data(diabetes)
sets <- list(iris = as.matrix(iris[, 1:4]), faithful = as.matrix(faithful), diabetes = as.matrix(diabetes[, -1]))
write.csv(sets$diabetes, "diabetes.csv", row.names = FALSE)
one <- list(waiting = faithful$waiting, eruptions = faithful$eruptions, sepal_length = iris$Sepal.Length)
models <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "EEV", "VEV", "VVV")
control <- emControl(tol = c(1e-14, sqrt(.Machine$double.eps)), itmax = c(1000000, 10000))

labels <- NULL
results <- NULL
params <- NULL
fit_all <- function(name, X, models, hcp, d) {
  n <- NROW(X)
  for (G in 1:5) {
    cl <- if (G == 1) rep(1, n) else as.vector(hclass(hcp, G))
    if (G > 1) labels <<- rbind(labels, data.frame(data = name, G = G, row = seq_len(n), label = cl))
    for (model in models) {
      fit <- tryCatch(me(X, modelName = model, z = unmap(cl), prior = priorControl(), control = control,
                         warn = FALSE), error = function(e) NULL)
      if (is.null(fit) || is.na(fit$loglik)) { message(name, " ", model, " ", G, " failed"); next }
      df <- nMclustParams(model, d, G)
      results <<- rbind(results, data.frame(data = name, model = model, G = G, loglik = fit$loglik, df = df,
                                            bic = 2 * fit$loglik - df * log(n),
                                            iterations = attr(fit, "info")[["iterations"]]))
      if (G == 3 && d > 1) {
        sigma <- fit$parameters$variance$sigma
        for (k in 1:G) {
          params <<- rbind(params, data.frame(data = name, model = model, component = k, what = "weight", i = 0,
                                              j = 0, value = fit$parameters$pro[k]))
          params <<- rbind(params, data.frame(data = name, model = model, component = k, what = "mean",
                                              i = 1:d, j = 0, value = fit$parameters$mean[, k]))
          params <<- rbind(params, data.frame(data = name, model = model, component = k, what = "covariance",
                                              i = rep(1:d, d), j = rep(1:d, each = d), value = as.vector(sigma[, , k])))
        }
      }
    }
  }
}
for (name in names(sets)) {
  X <- sets[[name]]
  hcp <- hc(X, modelName = mclust.options("hcModelName"), use = mclust.options("hcUse"))
  fit_all(name, X, models, hcp, ncol(X))
}
for (name in names(one)) {
  x <- one[[name]]
  fit_all(name, x, c("E", "V"), hc(x, modelName = "V"), 1)
}
write.csv(labels, "labels.csv", row.names = FALSE)
write.csv(results, "mclust_prior.csv", row.names = FALSE)
write.csv(params, "mclust_prior_params.csv", row.names = FALSE)

selection <- NULL
for (name in names(sets)) {
  fit <- Mclust(sets[[name]], prior = priorControl(), verbose = FALSE)
  selection <- rbind(selection, data.frame(data = name, model = fit$modelName, G = fit$G, loglik = fit$loglik,
                                           df = fit$df, bic = fit$bic))
}
write.csv(selection, "mclust_prior_selection.csv", row.names = FALSE)
