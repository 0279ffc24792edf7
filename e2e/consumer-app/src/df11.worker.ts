// The whole worker: importing the entry serves an engine to the page that started this worker.
import 'df11-web/worker';
