window.addEventListener("load", function () {
  var imgs = document.images, bad = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) { bad += 1; }
  }
  var el = document.getElementById("selfcheck");
  el.setAttribute("data-images", String(imgs.length));
  el.setAttribute("data-broken", String(bad));
  el.textContent = bad === 0 ? "images-ok" : "images-broken";
});
