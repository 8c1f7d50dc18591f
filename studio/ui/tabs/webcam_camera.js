// Put into the page's <head> by studio.ui.app (the Webcam tab's HEAD): runs before the page can ask for the camera.
// Gradio's webcam says nothing when the camera cannot be opened; this keeps the browser's reason in
// window.__toonlabCamera.message (and counts the requests in .asked) for webcam_camera_status.js to show.
(() => {
  const cam = window.__toonlabCamera = {message: '', say: null, asked: 0};  // asked: camera requests so far
  const say = (msg) => { cam.message = msg; if (cam.say) cam.say(msg); };
  const reasons = {
    NotAllowedError: 'The browser refused the camera. Allow it for this page (the camera icon in the address bar, '
      + 'or the site settings), then click the camera box again.',
    SecurityError: 'The browser refused the camera for this page. Allow it in the site settings, then click the '
      + 'camera box again.',
    NotFoundError: 'No camera was found. Connect one, then click the camera box again.',
    OverconstrainedError: 'No camera here can give a picture the page asked for.',
    NotReadableError: 'The camera could not be started: another program may be using it.',
  };
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say('This browser gives no camera to this page: browsers allow cameras only on http://127.0.0.1, '
      + 'http://localhost or https://, and this page is ' + location.origin + '.');
    return;
  }
  const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    cam.asked += 1;
    try {
      const stream = await open(constraints);
      say('');
      return stream;
    } catch (e) {
      say(reasons[e.name] || ('The camera could not be opened: ' + e.name + ' ' + e.message));
      throw e;
    }
  };
})();
