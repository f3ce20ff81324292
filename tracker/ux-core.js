/* OpsMantik tracker: placeholder until the tracker issue lands. */
(function () {
  'use strict';
})();
