// Run when the Webcam tab's status element (#webcam-camera-status) is shown: it shows the camera's failure
// reason kept by webcam_camera.js, and any later one.
const cam = window.__toonlabCamera;
if (cam) {
  cam.say = (msg) => { props.value = msg; };  // this element, also after the tab re-renders
  // The element's own first value ('') can land after a first timeout and wipe a reason given before the tab showed
  // (seen in about one run in four): for two seconds, put the reason back whenever the element does not show it.
  const keep = (left) => {
    if (cam.message && !element.innerText.includes(cam.message)) props.value = cam.message;
    if (left > 0) setTimeout(() => keep(left - 1), 100);
  };
  setTimeout(() => keep(20), 0);
}
